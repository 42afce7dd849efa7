"""StreamWorker against a real Redis: flow, poison entries, retries, claiming, NOGROUP recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from faststream.redis import RedisBroker
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.envelope import decode_entry
from vigil_shared.events import AlertReceived, DeadLetter, parse_event
from vigil_shared.runtime import make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, StreamWorker, publish_events

IN, OUT, GROUP = "test.in", "test.out", "testers"


def alert(n: int, text: str = "ok") -> AlertReceived:
    return AlertReceived(
        correlation_id=f"c{n}",
        producer="test",
        alert_id=f"al_{n}",
        source_kind="api",
        source_name="t",
        title=f"t{n}",
        text=text,
    )


async def wait_for(cond: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await cond():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def out_ids(redis: Redis) -> list[str]:
    rows = await redis.xrange(OUT)
    return [parse_event(AlertReceived, decode_entry(f)[0]).alert_id for _, f in rows]


async def dead_letters(redis: Redis) -> list[DeadLetter]:
    return [parse_event(DeadLetter, decode_entry(f)[0]) for _, f in await redis.xrange(streams.DEADLETTER)]


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[RedisBroker, StreamWorker[AlertReceived], Redis]] = []

    async def make(handler: Any, consumer: str = "c1", **overrides: Any) -> StreamWorker[AlertReceived]:
        base: dict[str, Any] = dict(
            block_ms=50, claim_interval_s=0.2, claim_idle_ms=300, max_deliveries=3, retention_interval_s=0
        )
        settings = VigilSettings(redis_url=redis_url, consumer_name=consumer, **{**base, **overrides})
        broker = make_broker(redis_url)
        client = Redis.from_url(redis_url)
        worker = StreamWorker(
            service="tester", stream=IN, group=GROUP, model=AlertReceived, handler=handler, settings=settings
        )
        worker.attach(broker)
        await worker.prepare(client)
        await broker.start()
        await worker.start_background(client)
        started.append((broker, worker, client))
        return worker

    yield make
    for broker, worker, client in started:
        await worker.stop()
        await broker.stop()
        await client.aclose()


async def relay(event: AlertReceived) -> Sequence[Publication]:
    return [Publication(OUT, event)]


async def test_valid_events_are_relayed_and_acknowledged(redis: Redis, workers: Any) -> None:
    await workers(relay)
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(50)], 10_000)
    await wait_for(lambda: _len(redis, OUT, 50))
    assert sorted(await out_ids(redis)) == sorted(f"al_{i}" for i in range(50))
    assert (await redis.xpending(IN, GROUP))["pending"] == 0


async def _len(redis: Redis, stream: str, n: int) -> bool:
    return int(await redis.xlen(stream)) >= n if await redis.exists(stream) else False


async def test_poison_entries_are_dead_lettered_and_the_batch_flows(redis: Redis, workers: Any) -> None:
    await workers(relay)
    await publish_events(redis, [Publication(IN, alert(1))], 10_000)
    await redis.xadd(IN, {"garbage": "yes"})
    await redis.xadd(IN, {"__data__": b"\x89BIN\r\n\x1a\nbroken"})
    await publish_events(redis, [Publication(IN, alert(2))], 10_000)
    await wait_for(lambda: _len(redis, streams.DEADLETTER, 2))
    await wait_for(lambda: _len(redis, OUT, 2))
    dls = await dead_letters(redis)
    assert {d.service for d in dls} == {"tester"}
    assert any("no __data__ field" in d.error for d in dls)
    assert any("not a FastStream message" in d.error or "not a valid" in d.error for d in dls)
    assert sorted(await out_ids(redis)) == ["al_1", "al_2"]
    assert (await redis.xpending(IN, GROUP))["pending"] == 0


async def test_a_failing_handler_is_retried_then_dead_lettered(redis: Redis, workers: Any) -> None:
    calls: dict[str, int] = {}

    async def flaky(event: AlertReceived) -> Sequence[Publication]:
        calls[event.alert_id] = calls.get(event.alert_id, 0) + 1
        if event.text == "poison":
            raise RuntimeError("cannot handle this one")
        if event.text == "twice" and calls[event.alert_id] < 3:
            raise ConnectionError("temporary")
        return [Publication(OUT, event)]

    await workers(flaky)
    await publish_events(
        redis,
        [Publication(IN, alert(1)), Publication(IN, alert(2, "poison")), Publication(IN, alert(3, "twice"))],
        10_000,
    )
    await wait_for(lambda: _len(redis, streams.DEADLETTER, 1), within=15)
    await wait_for(lambda: _len(redis, OUT, 2), within=15)
    dls = await dead_letters(redis)
    assert len(dls) == 1
    assert dls[0].attempts == 3
    assert "cannot handle this one" in dls[0].error
    assert sorted(await out_ids(redis)) == ["al_1", "al_3"]
    assert calls["al_2"] == 3
    assert calls["al_3"] == 3
    await wait_for(lambda: _no_pending(redis))


async def _no_pending(redis: Redis) -> bool:
    return (await redis.xpending(IN, GROUP))["pending"] == 0


async def test_entries_of_a_dead_consumer_are_claimed(redis: Redis, workers: Any) -> None:
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(5)], 10_000)
    # a "replica" that read the entries and died before acknowledging
    await redis.xgroup_create(IN, GROUP, id="0", mkstream=True)
    await redis.xreadgroup(GROUP, "dead-replica", {IN: ">"}, count=10)
    assert (await redis.xpending(IN, GROUP))["pending"] == 5
    await workers(relay, consumer="survivor")
    await wait_for(lambda: _len(redis, OUT, 5), within=10)
    assert sorted(await out_ids(redis)) == [f"al_{i}" for i in range(5)]
    await wait_for(lambda: _no_pending(redis))


async def test_group_is_recreated_after_the_stream_disappears(redis: Redis, workers: Any) -> None:
    await workers(relay)
    await publish_events(redis, [Publication(IN, alert(1))], 10_000)
    await wait_for(lambda: _len(redis, OUT, 1))
    await redis.delete(IN)  # as after a Redis restart without persistence: NOGROUP
    await asyncio.sleep(0.5)
    await publish_events(redis, [Publication(IN, alert(2))], 10_000)
    await wait_for(lambda: _len(redis, OUT, 2), within=15)
    assert sorted(await out_ids(redis)) == ["al_1", "al_2"]


async def test_results_of_an_entry_claimed_meanwhile_are_discarded(redis: Redis, workers: Any) -> None:
    """Fencing: a slow consumer whose entry was claimed by another one must not publish it too."""
    release = asyncio.Event()

    async def slow(event: AlertReceived) -> Sequence[Publication]:
        await release.wait()
        return [Publication(OUT, event)]

    slowpoke = await workers(slow, consumer="slowpoke", claim_interval_s=3600)
    await publish_events(redis, [Publication(IN, alert(1))])
    await wait_for(lambda: _pending_for(redis, "slowpoke", 1))
    # another replica takes the entry over (as its claim loop would after claim_idle_ms)
    await redis.xclaim(IN, GROUP, "rescuer", min_idle_time=0, message_ids=[(await _first_id(redis))])
    release.set()
    await wait_for(lambda: _stat(slowpoke, "fenced", 1))
    assert not await redis.exists(OUT)
    assert (await redis.xpending(IN, GROUP))["pending"] == 1  # still the rescuer's to finish


async def _pending_for(redis: Redis, consumer: str, n: int) -> bool:
    rows = await redis.xpending_range(IN, GROUP, min="-", max="+", count=100, consumername=consumer)
    return len(rows) >= n


async def _first_id(redis: Redis) -> bytes:
    rows = await redis.xrange(IN, count=1)
    return bytes(rows[0][0])


async def _stat(worker: StreamWorker[Any], name: str, n: int) -> bool:
    return int(getattr(worker.stats, name)) >= n


async def test_stop_hands_pending_entries_back_and_leaves_the_group(redis: Redis, workers: Any) -> None:
    async def failing(event: AlertReceived) -> Sequence[Publication]:
        raise RuntimeError("not now")

    leaving = await workers(failing, consumer="leaving", claim_interval_s=3600, claim_idle_ms=60_000)
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(3)])
    await wait_for(lambda: _pending_for(redis, "leaving", 3))
    await leaving.stop()
    assert leaving.stats.handed_back == 3
    rows = await redis.xpending_range(IN, GROUP, min="-", max="+", count=10)
    assert all(int(r["time_since_delivered"]) >= 60_000 for r in rows)  # claimable at once
    assert all(int(r["times_delivered"]) == 1 for r in rows)  # handing back is not a delivery
    # a survivor with the same claim_idle_ms picks them up on its first pass
    await workers(relay, consumer="survivor", claim_idle_ms=60_000)
    await wait_for(lambda: _len(redis, OUT, 3), within=10)
    await wait_for(lambda: _no_pending(redis))
    names = {c["name"] for c in await redis.xinfo_consumers(IN, GROUP)}
    assert b"leaving" in names  # still listed until idle-removal; it owns nothing now


async def test_a_stopped_consumer_that_owns_nothing_leaves_the_group(redis: Redis, workers: Any) -> None:
    w = await workers(relay, consumer="short-lived")
    await publish_events(redis, [Publication(IN, alert(1))])
    await wait_for(lambda: _len(redis, OUT, 1))
    await w.stop()
    names = {c["name"] for c in await redis.xinfo_consumers(IN, GROUP)}
    assert b"short-lived" not in names


async def test_dead_consumers_are_removed_once_their_entries_are_claimed(redis: Redis, workers: Any) -> None:
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(4)])
    await redis.xgroup_create(IN, GROUP, id="0", mkstream=True)
    await redis.xreadgroup(GROUP, "crashed", {IN: ">"}, count=10)
    await workers(relay, consumer="alive", consumer_idle_remove_s=0.5)
    await wait_for(lambda: _len(redis, OUT, 4), within=10)

    async def gone() -> bool:
        names = {c["name"] for c in await redis.xinfo_consumers(IN, GROUP)}
        return b"crashed" not in names and b"alive" in names

    await wait_for(gone, within=10)
    assert sorted(await out_ids(redis)) == [f"al_{i}" for i in range(4)]


async def test_a_consumer_owning_entries_is_never_removed(redis: Redis, workers: Any) -> None:
    async def failing(event: AlertReceived) -> Sequence[Publication]:
        raise RuntimeError("keeps failing")

    await publish_events(redis, [Publication(IN, alert(1))])
    await redis.xgroup_create(IN, GROUP, id="0", mkstream=True)
    await redis.xreadgroup(GROUP, "holder", {IN: ">"}, count=10)
    w = await workers(failing, consumer="other", claim_interval_s=3600, consumer_idle_remove_s=0.1)
    await asyncio.sleep(0.3)
    assert await w.remove_idle_consumers() == []
    names = {c["name"] for c in await redis.xinfo_consumers(IN, GROUP)}
    assert b"holder" in names


async def test_publish_events_without_a_cap_does_not_trim(redis: Redis) -> None:
    await publish_events(redis, [Publication(OUT, alert(i)) for i in range(50)])
    assert await redis.xlen(OUT) == 50


async def test_an_output_that_cannot_be_encoded_fails_only_its_entry(redis: Redis, workers: Any) -> None:
    async def relay_or_garbage(event: AlertReceived) -> Sequence[Publication]:
        if event.text == "unserialisable":
            return [Publication(OUT, AlertReceived.model_construct(**{**dict(event), "extra": {"x": object()}}))]
        return [Publication(OUT, event)]

    await workers(relay_or_garbage)
    await publish_events(
        redis, [Publication(IN, alert(1)), Publication(IN, alert(2, "unserialisable")), Publication(IN, alert(3))]
    )
    await wait_for(lambda: _len(redis, OUT, 2))
    await wait_for(lambda: _len(redis, streams.DEADLETTER, 1), within=15)
    await wait_for(lambda: _no_pending(redis), within=15)
    assert await out_ids(redis) == ["al_1", "al_3"]
    (dl,) = await dead_letters(redis)
    assert dl.attempts == 3
    assert "handler failed 3 times" in dl.error
