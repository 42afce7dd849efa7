"""Chaos tests of the delivery guarantees (issue 5): real Redis with AOF, real ``vigil run`` processes.

Run them with ``uv run pytest tests/reliability -m e2e -v``. Each test prints its counts and timings.
"""

from __future__ import annotations

import asyncio
import json
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
