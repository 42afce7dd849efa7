"""Chaos tests of the delivery guarantees (issue 5): real Redis with AOF, real ``vigil run`` processes.

Run them with ``uv run pytest tests/reliability -m e2e -v``. Each test prints its counts and timings.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from typing import Any

import pytest
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.envelope import decode_entry

from .conftest import Pipeline, send_alerts, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def pending_of(redis: Redis, stream: str, group: str, consumer: str) -> int:
    rows = await redis.xpending_range(stream, group, min="-", max="+", count=10_000, consumername=consumer)
    return len(rows)


async def group_pending(redis: Redis, stream: str, group: str) -> int:
    return int((await redis.xpending(stream, group))["pending"])


async def classified_ids(redis: Redis) -> list[str]:
    out = []
    for _, fields in await redis.xrange(streams.ALERTS_CLASSIFIED):
        out.append(json.loads(decode_entry(fields)[0])["alert"]["alert_id"])
    return out


def report(name: str, **figures: Any) -> None:
    print(f"\n[chaos] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def test_sigkill_of_one_classify_replica_loses_and_duplicates_nothing(pipeline: Pipeline) -> None:
    total = 2000
    started = time.monotonic()
    # real classify code; 3 ms per alert keeps batches in flight so the kill lands inside one
    classifiers = [pipeline.start("chaos-classify", VIGIL_CHAOS_DELAY_MS="3") for _ in range(3)]
    notify = pipeline.start("notify")
    await pipeline.wait_ready([*classifiers, notify])
    ready_s = time.monotonic() - started
    redis = Redis.from_url(pipeline.url)
    victim = classifiers[0]
    try:
        sender = asyncio.create_task(_send_slowly(redis, total))
        # kill the victim while it holds a batch it has read but not committed
        deadline = time.monotonic() + 30
        while True:
            held = await pending_of(redis, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY, victim.consumer)
            if held > 0 and await redis.xlen(streams.ALERTS_RECEIVED) > total // 4:
                victim.popen.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "victim never held a batch"
            await asyncio.sleep(0.01)
        killed_at = time.monotonic()
        victim.popen.wait(5)
        orphaned = await pending_of(redis, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY, victim.consumer)
        await sender

        async def all_delivered() -> bool:
            return len(pipeline.delivered()) >= total

        try:
            await wait_until(all_delivered, within=90, what="every alert delivered")
        except AssertionError:
            raise AssertionError(
                f"delivered {len(pipeline.delivered())}/{total}\n{pipeline.dump_logs()}"
            ) from None
        all_done_s = time.monotonic() - started
        # give a late duplicate every chance to show up: > claim_idle_ms + claim_interval_s
        await asyncio.sleep(2.5)
        counts = pipeline.delivered()
        assert set(counts) == {f"al_k_{i:05d}" for i in range(total)}
        dupes = {k: v for k, v in counts.items() if v != 1}
        assert not dupes, f"delivered more than once: {dupes}"
        # the stream-to-stream hop is exactly-once too (fenced atomic commit)
        ids = await classified_ids(redis)
        assert len(ids) == total
        assert len(set(ids)) == total
        assert await group_pending(redis, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY) == 0
        assert await group_pending(redis, streams.ALERTS_CLASSIFIED, streams.GROUP_NOTIFY) == 0

        # the dead replica leaves the group once its entries were claimed (idle-removal: 3 s here)
        async def victim_removed() -> bool:
            names = {
                c["name"]
                for c in await redis.xinfo_consumers(streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY)
            }
            return victim.consumer.encode() not in names

        await wait_until(victim_removed, within=15, what="dead consumer removed")
        survivors_claimed = sum(
            1 for p in classifiers[1:] for e in p.log_events() if e.get("event") == "claimed pending entries"
        )
        report(
            "sigkill",
            alerts=total,
            delivered_once=sum(1 for v in counts.values() if v == 1),
            duplicates=len(dupes),
            victim_pending_at_kill=orphaned,
            claim_batches=survivors_claimed,
            ready_s=round(ready_s, 1),
            total_s=round(all_done_s, 1),
            after_kill_s=round(time.monotonic() - killed_at, 1),
        )
        assert orphaned > 0, "the kill did not land inside a batch; the claim path was not exercised"
        assert all(p.alive() for p in [*classifiers[1:], notify])
    finally:
        await redis.aclose()


async def _send_slowly(redis: Redis, total: int) -> None:
    for start in range(0, total, 100):
        await send_alerts(redis, "k", range(start, min(start + 100, total)))
        await asyncio.sleep(0.05)


def _noisy_lines(proc: Any) -> int:
    return sum(1 for e in proc.log_events() if e.get("level") in ("warning", "error", "critical"))


def _sent_unrecorded(proc: Any) -> int:
    """Deliveries notify sent whose "sent" marks died with Redis (kept in the process, not resent):
    from vigil_notify.delivery's warnings (a stdlib logger: plain text lines)."""
    return sum(int(n) for n in re.findall(r"(\d+) delivery\(ies\) sent but not recorded", proc.log_text()))


async def test_redis_restart_mid_run_loses_nothing_and_services_recover_alone(pipeline: Pipeline) -> None:
    half = 500
    procs = [pipeline.start("chaos-classify", VIGIL_CHAOS_DELAY_MS="1") for _ in range(2)]
    procs.append(pipeline.start("notify"))
    await pipeline.wait_ready(procs)
    redis = Redis.from_url(pipeline.url)
    try:
        await send_alerts(redis, "r", range(half))
        await asyncio.sleep(0.3)  # let the pipeline get busy
        in_flight = half - len(pipeline.delivered())
        down_s = pipeline.restart_redis(kill=True)  # SIGKILL: no shutdown save, AOF (fsync always) only
        restarted = time.monotonic()
        await redis.aclose()  # this client's connection died with the server; a producer reconnects
        redis = Redis.from_url(pipeline.url)
        await send_alerts(redis, "r", range(half, 2 * half))  # a producer carrying on after the restart

        async def all_delivered() -> bool:
            return len(pipeline.delivered()) >= 2 * half

        try:
            await wait_until(all_delivered, within=90, what="every alert delivered after the restart")
        except AssertionError:
            got = len(pipeline.delivered())
            raise AssertionError(f"delivered {got}/{2 * half}\n{pipeline.dump_logs()}") from None
        recovered_s = time.monotonic() - restarted
        await asyncio.sleep(2.5)
        counts = pipeline.delivered()
        assert set(counts) == {f"al_r_{i:05d}" for i in range(2 * half)}, "an alert was lost"
        dupes = {k: v for k, v in counts.items() if v != 1}
        ids = await classified_ids(redis)
        assert len(set(ids)) == 2 * half
        assert all(p.alive() for p in procs), "a service died instead of reconnecting"
        noisy = {p.log.name: _noisy_lines(p) for p in procs}
        report(
            "redis-restart",
            alerts=2 * half,
            in_flight_at_kill=in_flight,
            redis_down_s=round(down_s, 2),
            recovered_s=round(recovered_s, 1),
            classified_duplicates=len(ids) - len(set(ids)),
            jsonl_duplicates=len(dupes),
            sent_unrecorded_at_kill=_sent_unrecorded(procs[-1]),
            warning_lines=noisy,
        )
        # the stream hop stays exactly-once, and so do the notifications: notify lives through the
        # restart, so what it sent just before the kill (its marks lost with Redis) it records when
        # Redis is back instead of sending it again (docs/guarantees.md, duplicates 1)
        assert len(ids) == 2 * half
        assert not dupes, f"notified more than once: {dupes}"
        assert all(n < 500 for n in noisy.values()), f"hot loop? {noisy}"  # a hot loop logs thousands
    finally:
        await redis.aclose()


async def test_poison_and_failing_alert_are_dead_lettered_then_replayed(pipeline: Pipeline) -> None:
    fault = pipeline.tmp / "faulty-ids"
    bad = "al_p_00007"
    fault.write_text(bad + "\n")
    procs = [pipeline.start("chaos-classify", VIGIL_CHAOS_FAIL_FILE=str(fault)), pipeline.start("notify")]
    await pipeline.wait_ready(procs)
    redis = Redis.from_url(pipeline.url)
    try:
        await send_alerts(redis, "p", range(10))
        await redis.xadd(streams.ALERTS_RECEIVED, {"title": "not an event", "text": "written by hand"})
        await send_alerts(redis, "p", range(10, 20))

        async def settled() -> bool:
            return len(pipeline.delivered()) >= 19 and await redis.xlen(streams.DEADLETTER) >= 2

        await wait_until(settled, within=30, what="19 delivered and 2 dead letters")
        assert set(pipeline.delivered()) == {f"al_p_{i:05d}" for i in range(20)} - {bad}

        listed = pipeline.vigil("dlq", "list", "--json", check=True).stdout.splitlines()
        records = [json.loads(line) for line in listed]
        assert len(records) == 2
        by_cause = {("injected" in r["error"]): r for r in records}
        poison, failing = by_cause[False], by_cause[True]
        assert "no __data__ field" in poison["error"]
        assert poison["attempts"] == 1
        assert failing["attempts"] == 3
        assert "InjectedFault" in failing["error"]
        assert {r["stream"] for r in records} == {streams.ALERTS_RECEIVED}
        assert {r["group"] for r in records} == {streams.GROUP_CLASSIFY}
        human = pipeline.vigil("dlq", "list", check=True).stdout
        assert failing["id"] in human
        assert poison["id"] in human
        shown = json.loads(pipeline.vigil("dlq", "show", failing["id"], check=True).stdout)
        assert shown["entry_id"] == failing["entry_id"]
        assert bad in json.dumps(shown)
        assert pipeline.vigil("dlq", "show", "1-1").returncode == 1

        status = json.loads(pipeline.vigil("status", "--json").stdout)
        received = next(s for s in status["streams"] if s["stream"] == streams.ALERTS_RECEIVED)
        cls_group = next(g for g in received["groups"] if g["name"] == streams.GROUP_CLASSIFY)
        assert cls_group["dead_letters"] == 2
        assert cls_group["pending"] == 0

        # replay before the fix: the failing alert comes back to the dead-letter stream
        # after the fix: it is delivered; the poison entry cannot be fixed and is dead-lettered again
        fault.unlink()
        out = pipeline.vigil("dlq", "replay", check=True).stdout
        assert "replayed 2 entries" in out

        async def replayed() -> bool:
            return bad in pipeline.delivered() and await redis.xlen(streams.DEADLETTER) >= 1

        await wait_until(replayed, within=20, what="replayed alert delivered")
        await asyncio.sleep(1.0)
        counts = pipeline.delivered()
        assert set(counts) == {f"al_p_{i:05d}" for i in range(20)}
        assert all(v == 1 for v in counts.values())
        again = [json.loads(line) for line in pipeline.vigil("dlq", "list", "--json").stdout.splitlines()]
        assert len(again) == 1
        assert "no __data__ field" in again[0]["error"]
        assert "purged 1" in pipeline.vigil("dlq", "purge", "--yes", check=True).stdout
        assert await redis.xlen(streams.DEADLETTER) == 0
        final = pipeline.vigil("status")
        assert final.returncode == 0, final.stdout + final.stderr
        report("poison+fault", delivered=len(counts), dead_lettered=2, replayed=2, re_dead_lettered=1)
    finally:
        await redis.aclose()


async def test_new_group_on_classified_stream_from_start_or_now(pipeline: Pipeline) -> None:
    procs = [pipeline.start("classify"), pipeline.start("notify")]
    await pipeline.wait_ready(procs)
    redis = Redis.from_url(pipeline.url)
    try:
        await send_alerts(redis, "g", range(100))

        async def delivered(n: int) -> bool:
            return len(pipeline.delivered()) >= n

        await wait_until(lambda: delivered(100), within=30, what="first 100 delivered")
        s = streams.ALERTS_CLASSIFIED
        out = pipeline.vigil("groups", "add", "audit", "--stream", s, "--from", "start", check=True).stdout
        assert "beginning" in out
        pipeline.vigil("groups", "add", "live", "--stream", s, "--from", "now", check=True)
        assert pipeline.vigil("groups", "add", "live", "--stream", s).returncode == 1  # exists
        await send_alerts(redis, "g", range(100, 150))
        await wait_until(lambda: delivered(150), within=30, what="next 50 delivered")

        # notify is not disturbed: everything exactly once, nothing pending
        counts = pipeline.delivered()
        assert len(counts) == 150
        assert all(v == 1 for v in counts.values())
        await asyncio.sleep(0.5)
        assert await group_pending(redis, s, streams.GROUP_NOTIFY) == 0

        # the new groups wait with no consumer: status says so and exits non-zero
        st = pipeline.vigil("status", "--json")
        assert st.returncode == 1
        doc = json.loads(st.stdout)
        groups = {g["name"]: g for x in doc["streams"] if x["stream"] == s for g in x["groups"]}
        assert groups["audit"]["lag"] == 150
        assert groups["live"]["lag"] == 50
        assert groups["notify"]["lag"] == 0
        assert any("audit" in p and "no consumer" in p for p in doc["problems"])
        listed = pipeline.vigil("groups", "list", "--stream", s, check=True).stdout
        assert "audit" in listed

        # a consumer of each new group reads what its --from promised
        audit = await redis.xreadgroup("audit", "reader", {s: ">"}, count=1000)
        live = await redis.xreadgroup("live", "reader", {s: ">"}, count=1000)
        assert len(audit[0][1]) == 150
        assert len(live[0][1]) == 50
        assert "removed" in pipeline.vigil("groups", "remove", "live", "--stream", s, check=True).stdout
        assert pipeline.vigil("groups", "remove", "notify", "--stream", s).returncode == 2  # guarded
        report("new-group", notify_delivered=len(counts), audit_read=150, live_read=50)
    finally:
        await redis.aclose()


async def test_sigterm_finishes_in_flight_work_and_exits_in_time(pipeline: Pipeline) -> None:
    total = 300
    # 20 ms per alert, 50 per batch: each batch is ~1 s of work in flight
    first = pipeline.start("chaos-classify", VIGIL_CHAOS_DELAY_MS="20")
    await pipeline.wait_ready([first])
    redis = Redis.from_url(pipeline.url)
    try:
        await send_alerts(redis, "t", range(total))

        async def holding() -> bool:
            return (
                await pending_of(redis, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY, first.consumer) > 0
            )

        await wait_until(holding, within=20, what="a batch in flight")
        t0 = time.monotonic()
        first.popen.send_signal(signal.SIGTERM)
        rc = first.popen.wait(20)
        exit_s = time.monotonic() - t0
        assert rc == 0, first.log_text()[-3000:]
        assert exit_s < 15, f"took {exit_s:.1f}s to stop (compose kills after 15 s)"
        events = [e.get("event") for e in first.log_events()]
        assert "stopped" in events
        left = await pending_of(redis, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY, first.consumer)
        done_before = await redis.xlen(streams.ALERTS_CLASSIFIED)
        assert done_before >= 50, "the in-flight batch was not finished"
        # a new replica completes the rest, nothing twice
        second = pipeline.start("chaos-classify")
        await pipeline.wait_ready([second])

        async def all_classified() -> bool:
            return int(await redis.xlen(streams.ALERTS_CLASSIFIED)) >= total

        await wait_until(all_classified, within=30, what="the rest classified")
        await asyncio.sleep(2.0)
        ids = await classified_ids(redis)
        assert sorted(ids) == [f"al_t_{i:05d}" for i in range(total)]
        names = {
            c["name"] for c in await redis.xinfo_consumers(streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY)
        }
        if left == 0:
            assert first.consumer.encode() not in names  # it left the group on its way out
        report("sigterm", exit_s=round(exit_s, 2), classified_before_exit=done_before, handed_back=left)
    finally:
        await redis.aclose()
