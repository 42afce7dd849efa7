"""StreamWorker's batch handler mode against a real Redis: per-event outcomes (ok / PermanentError /
transient exception), a raising batch handler, invalid entries inside a batch, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from faststream.redis import RedisBroker
from pydantic import ValidationError
from redis.asyncio import Redis

# the per-entry worker tests' helpers (tests/shared is on sys.path: pytest's rootdir-relative import)
from test_worker import alert, dead_letters, wait_for
from vigil_shared import streams
from vigil_shared.envelope import decode_entry
from vigil_shared.events import AlertReceived, DeadLetter, InvalidEvent, parse_event
from vigil_shared.runtime import make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import BatchHandler, PermanentError, Publication, StreamWorker, publish_events

IN, OUT, GROUP = "test.batch.in", "test.batch.out", "batchers"

Outcome = Sequence[Publication] | BaseException


async def out_ids(redis: Redis) -> list[str]:
    rows = await redis.xrange(OUT)
    return [parse_event(AlertReceived, decode_entry(f)[0]).alert_id for _, f in rows]


async def length_at_least(redis: Redis, stream: str, n: int) -> bool:
    return int(await redis.xlen(stream)) >= n if await redis.exists(stream) else False


async def pending(redis: Redis) -> int:
    return int((await redis.xpending(IN, GROUP))["pending"])


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[RedisBroker, StreamWorker[AlertReceived], Redis]] = []

    async def make(
        batch_handler: BatchHandler[AlertReceived],
        consumer: str = "c1",
        parse: Callable[[bytes], AlertReceived] | None = None,
        **overrides: Any,
    ) -> StreamWorker[AlertReceived]:
        base: dict[str, Any] = dict(
            block_ms=50, claim_interval_s=0.2, claim_idle_ms=300, max_deliveries=3, retention_interval_s=0
        )
        settings = VigilSettings(redis_url=redis_url, consumer_name=consumer, **{**base, **overrides})
        broker = make_broker(redis_url)
        client = Redis.from_url(redis_url)
        worker = StreamWorker(
            service="tester",
            stream=IN,
            group=GROUP,
            model=AlertReceived,
            batch_handler=batch_handler,
            settings=settings,
            parse=parse,
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


def test_exactly_one_of_handler_and_batch_handler(redis_url: str) -> None:
    settings = VigilSettings(redis_url=redis_url, consumer_name="x")

    async def one(event: AlertReceived) -> Sequence[Publication]:
        return []

    async def many(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        return [[] for _ in events]

    common: dict[str, Any] = dict(service="t", stream=IN, group=GROUP, model=AlertReceived, settings=settings)
    with pytest.raises(ValueError, match="exactly one"):
        StreamWorker(**common)
    with pytest.raises(ValueError, match="exactly one"):
        StreamWorker(handler=one, batch_handler=many, **common)


async def test_all_ok_in_stream_order_one_call_per_batch(redis: Redis, workers: Any) -> None:
    calls: list[list[str]] = []

    async def relay(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        calls.append([e.alert_id for e in events])
        return [[Publication(OUT, e)] for e in events]

    # written before the worker starts: its first read takes them all (batch_size 200)
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(120)], 10_000)
    w = await workers(relay)
    await wait_for(lambda: length_at_least(redis, OUT, 120))
    expected = [f"al_{i}" for i in range(120)]
    assert calls[0] == expected  # one call for the whole read batch, in stream order
    assert [a for call in calls for a in call] == expected
    assert await out_ids(redis) == expected  # published in stream order, once
    assert await pending(redis) == 0
    assert not await redis.exists(streams.DEADLETTER)
    assert (w.stats.consumed, w.stats.published, w.stats.failed) == (120, 120, 0)


async def test_mixed_outcomes_in_one_batch(redis: Redis, workers: Any) -> None:
    """ok, PermanentError, an always-failing and a twice-failing event in one batch: each settled on
    its own — dead-lettered at once, retried then dead-lettered after max_deliveries, retried then
    published, published."""
    seen: dict[str, int] = {}
    batches: list[list[str]] = []

    async def mixed(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        batches.append([e.alert_id for e in events])
        out: list[Outcome] = []
        for e in events:
            seen[e.alert_id] = seen.get(e.alert_id, 0) + 1
            if e.text == "permanent":
                out.append(PermanentError(f"cannot ever handle {e.alert_id}"))
            elif e.text == "always":
                out.append(RuntimeError("keeps failing"))
            elif e.text == "twice" and seen[e.alert_id] < 3:
                out.append(ConnectionError("temporary"))
            else:
                out.append([Publication(OUT, e)])
        return out

    texts = ["ok", "permanent", "always", "ok", "twice", "ok"]
    await publish_events(redis, [Publication(IN, alert(i, t)) for i, t in enumerate(texts)], 10_000)
    w = await workers(mixed)
    await wait_for(lambda: length_at_least(redis, streams.DEADLETTER, 2), within=15)
    await wait_for(lambda: length_at_least(redis, OUT, 4), within=15)
    await wait_for(lambda: _no_pending(redis), within=15)

    assert batches[0] == [f"al_{i}" for i in range(6)]  # all six in the first call
    assert sorted(await out_ids(redis)) == ["al_0", "al_3", "al_4", "al_5"]  # each exactly once
    dls = {d.correlation_id: d for d in await dead_letters(redis)}
    assert set(dls) == {"c1", "c2"}
    assert dls["c1"].attempts == 1
    assert dls["c1"].error == "cannot ever handle al_1"
    assert dls["c2"].attempts == 3
    assert "handler failed 3 times" in dls["c2"].error
    assert "RuntimeError: keeps failing" in dls["c2"].error
    assert seen["al_1"] == 1  # a permanent error is not retried
    assert seen["al_2"] == seen["al_4"] == 3
    assert seen["al_0"] == seen["al_3"] == seen["al_5"] == 1  # the ok ones were not handled again
    assert w.stats.failed == 3 + 2  # every failed attempt counts: al_2 three times, al_4 twice
    assert w.stats.deadlettered == 2


async def _no_pending(redis: Redis) -> bool:
    return await pending(redis) == 0


async def test_a_raising_batch_handler_fails_every_event_of_the_batch(redis: Redis, workers: Any) -> None:
    """Nothing of the batch is committed (its events stay pending and are retried by the claim loop),
    except an invalid entry's dead letter; once the handler works, each event is published once."""
    broken = asyncio.Event()
    broken.set()
    calls: list[list[str]] = []

    async def fragile(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        calls.append([e.alert_id for e in events])
        if broken.is_set():
            raise RuntimeError("model server down")
        return [[Publication(OUT, e)] for e in events]

    await publish_events(redis, [Publication(IN, alert(i)) for i in range(3)], 10_000)
    await redis.xadd(IN, {"garbage": "yes"})
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(3, 5)], 10_000)
    w = await workers(fragile, claim_interval_s=3600)  # no retry until we say so
    await wait_for(lambda: _stat(w, "failed", 5))
    assert calls == [[f"al_{i}" for i in range(5)]]
    assert not await redis.exists(OUT)
    assert await pending(redis) == 5  # the five valid ones; the invalid one was dead-lettered
    assert len(await dead_letters(redis)) == 1
    broken.clear()
    await asyncio.sleep(0.4)  # past claim_idle_ms
    assert await w.claim_once() == 5
    assert sorted(await out_ids(redis)) == [f"al_{i}" for i in range(5)]
    assert await pending(redis) == 0


async def test_a_wrong_number_of_results_fails_the_batch(redis: Redis, workers: Any) -> None:
    async def short(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        return [[Publication(OUT, e)] for e in events][:-1]

    await publish_events(redis, [Publication(IN, alert(i)) for i in range(3)], 10_000)
    w = await workers(short, claim_interval_s=3600)
    await wait_for(lambda: _stat(w, "failed", 3))
    assert not await redis.exists(OUT)
    assert await pending(redis) == 3


async def test_retries_exhausted_after_a_raising_batch_handler(redis: Redis, workers: Any) -> None:
    async def always(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        raise ConnectionError("never works")

    await publish_events(redis, [Publication(IN, alert(i)) for i in range(2)], 10_000)
    await workers(always)
    await wait_for(lambda: length_at_least(redis, streams.DEADLETTER, 2), within=15)
    await wait_for(lambda: _no_pending(redis), within=15)
    dls = await dead_letters(redis)
    assert sorted(d.correlation_id for d in dls) == ["c0", "c1"]
    assert all(d.attempts == 3 and "ConnectionError: never works" in d.error for d in dls)


async def test_invalid_entries_in_a_batch_are_dead_lettered_the_rest_flows(redis: Redis, workers: Any) -> None:
    calls: list[list[str]] = []

    async def relay(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        calls.append([e.alert_id for e in events])
        return [[Publication(OUT, e)] for e in events]

    await publish_events(redis, [Publication(IN, alert(1))], 10_000)
    await redis.xadd(IN, {"garbage": "yes"})
    await publish_events(redis, [Publication(IN, alert(2))], 10_000)
    await redis.xadd(IN, {"__data__": b"\x89BIN\r\n\x1a\nbroken"})
    not_an_alert = DeadLetter(
        correlation_id="x",
        producer="t",
        stream="s",
        group="g",
        service="s",
        entry_id="1-0",
        fields={},
        error="e",
        attempts=1,
    )  # a valid envelope whose body is not an AlertReceived
    await publish_events(redis, [Publication(IN, not_an_alert), Publication(IN, alert(3))], 10_000)
    await workers(relay)
    await wait_for(lambda: length_at_least(redis, streams.DEADLETTER, 3))
    await wait_for(lambda: length_at_least(redis, OUT, 3))
    assert calls[0] == ["al_1", "al_2", "al_3"]  # only the valid events, in stream order
    assert await out_ids(redis) == ["al_1", "al_2", "al_3"]
    errors = sorted(d.error for d in await dead_letters(redis))
    assert any("no __data__ field" in e for e in errors)
    # the broken envelope fails either as an envelope or as JSON; the DeadLetter body as an AlertReceived
    assert sum("not a FastStream message" in e or "not a valid AlertReceived" in e for e in errors) == 2
    assert any("alert_id: Field required" in e for e in errors)
    assert await pending(redis) == 0


async def test_a_parse_callable_decodes_each_entry_and_its_refusals_are_dead_lettered(
    redis: Redis, workers: Any
) -> None:
    """``parse=``: the worker's decode of each entry's body (notify's lean decode); what it raises as
    InvalidEvent dead-letters the entry with that reason, the rest flows."""
    bodies: list[bytes] = []

    def parse(body: bytes) -> AlertReceived:
        bodies.append(body)
        event = parse_event(AlertReceived, body)
        if event.alert_id == "al_2":
            raise InvalidEvent("AlertReceived", _validation_error("refused by this decode"))
        return event

    calls: list[list[str]] = []

    async def relay(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        calls.append([e.alert_id for e in events])
        return [[Publication(OUT, e)] for e in events]

    await publish_events(redis, [Publication(IN, alert(i)) for i in (1, 2, 3)], 10_000)
    await workers(relay, parse=parse)
    await wait_for(lambda: length_at_least(redis, OUT, 2))
    await wait_for(lambda: length_at_least(redis, streams.DEADLETTER, 1))
    assert calls[0] == ["al_1", "al_3"]
    assert [parse_event(AlertReceived, b).alert_id for b in bodies[:3]] == ["al_1", "al_2", "al_3"]
    (dead,) = await dead_letters(redis)
    assert "refused by this decode" in dead.error
    assert await pending(redis) == 0


def _validation_error(message: str) -> ValidationError:
    return ValidationError.from_exception_data(
        "AlertReceived", [{"type": "value_error", "loc": ("alert_id",), "input": 2, "ctx": {"error": message}}]
    )


async def test_batch_results_of_an_entry_claimed_meanwhile_are_discarded(redis: Redis, workers: Any) -> None:
    release = asyncio.Event()

    async def slow(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        await release.wait()
        return [[Publication(OUT, e)] for e in events]

    await publish_events(redis, [Publication(IN, alert(1)), Publication(IN, alert(2))])
    slowpoke = await workers(slow, consumer="slowpoke", claim_interval_s=3600)

    async def both_pending() -> bool:
        rows = await redis.xpending_range(IN, GROUP, min="-", max="+", count=10, consumername="slowpoke")
        return len(rows) == 2

    await wait_for(both_pending)
    first = bytes((await redis.xrange(IN, count=1))[0][0])
    await redis.xclaim(IN, GROUP, "rescuer", min_idle_time=0, message_ids=[first])
    release.set()
    await wait_for(lambda: _stat(slowpoke, "fenced", 1))
    assert await out_ids(redis) == ["al_2"]  # the one it still owned is committed, the other is not
    assert await pending(redis) == 1  # the rescuer's to finish


async def _stat(worker: StreamWorker[Any], name: str, n: int) -> bool:
    return int(getattr(worker.stats, name)) >= n


async def test_an_output_that_cannot_be_encoded_fails_only_its_entry(redis: Redis, workers: Any) -> None:
    """Serialising happens before the commit, entry by entry: an output pydantic cannot serialise fails
    its own entry like a handler error (retried, then dead-lettered); the rest of the batch commits."""

    async def relay(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        out: list[Outcome] = []
        for e in events:
            if e.text == "unserialisable":
                bad = AlertReceived.model_construct(**{**dict(e), "extra": {"x": object()}})
                out.append([Publication(OUT, bad)])
            else:
                out.append([Publication(OUT, e)])
        return out

    texts = ["ok", "unserialisable", "ok"]
    await publish_events(redis, [Publication(IN, alert(i, t)) for i, t in enumerate(texts)], 10_000)
    w = await workers(relay)
    await wait_for(lambda: length_at_least(redis, OUT, 2))
    assert await out_ids(redis) == ["al_0", "al_2"]
    await wait_for(lambda: length_at_least(redis, streams.DEADLETTER, 1), within=15)
    await wait_for(lambda: _no_pending(redis), within=15)
    (dl,) = await dead_letters(redis)
    assert dl.correlation_id == "c1"
    assert dl.attempts == 3
    assert "handler failed 3 times" in dl.error
    assert w.stats.failed == 3
    assert await out_ids(redis) == ["al_0", "al_2"]


async def test_counts_of_a_batch_with_fenced_dead_lettered_and_multi_output_entries(
    redis: Redis, redis_url: str
) -> None:
    """``process`` releases the batch's events and publications before the commit's round trip and
    counts from what it kept: the published count is the outputs of the committed entries only (not a
    fenced entry's, not a dead letter), and the handler's objects are no longer referenced by the
    worker while the commit runs."""
    import gc
    import weakref

    from vigil_shared import worker as worker_module
    from vigil_shared.streams import read_entries

    outputs_per_alert = {"al_0": 0, "al_1": 2, "al_2": 3, "al_3": 1}
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(4)])
    await redis.xadd(IN, {"not_data": "x"})  # invalid: dead-lettered at once
    client = Redis.from_url(redis_url)
    settings = VigilSettings(redis_url=redis_url, consumer_name="c1", retention_interval_s=0)
    made: list[weakref.ref[Any]] = []

    async def fan_out(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        # al_1 is claimed by another consumer while the handler runs: its results are fenced
        await redis.xclaim(IN, GROUP, "rescuer", min_idle_time=0, message_ids=[entries[1][0]])
        out: list[Outcome] = []
        for e in events:
            made.append(weakref.ref(e))
            pubs = [Publication(OUT, e.model_copy()) for _ in range(outputs_per_alert[e.alert_id])]
            made.extend(weakref.ref(p.event) for p in pubs)
            out.append(pubs)
        return out

    alive_at_commit: list[int] = []
    real_commit = worker_module.commit_encoded

    async def watching_commit(*args: Any, **kwargs: Any) -> set[bytes]:
        gc.collect()
        alive_at_commit.append(sum(r() is not None for r in made))
        return await real_commit(*args, **kwargs)

    w = StreamWorker(
        service="tester", stream=IN, group=GROUP, model=AlertReceived, batch_handler=fan_out, settings=settings
    )
    await w.prepare(client)
    await w.start_background(client)
    worker_module.commit_encoded = watching_commit  # type: ignore[assignment]
    try:
        entries = read_entries(await client.xreadgroup(GROUP, "c1", {IN: ">"}, count=10))
        assert len(entries) == 5
        await w.process(entries)
    finally:
        worker_module.commit_encoded = real_commit
        w._stopping = True
        await w.stop(grace_s=1)
        await client.aclose()
    assert alive_at_commit == [0]  # the events (in and out) were released before the commit
    assert (w.stats.consumed, w.stats.fenced, w.stats.deadlettered) == (5, 1, 1)
    assert w.stats.published == 0 + 3 + 1  # al_1's two outputs were fenced; the dead letter is not counted
    assert await out_ids(redis) == ["al_2", "al_2", "al_2", "al_3"]
    assert len(await dead_letters(redis)) == 1
