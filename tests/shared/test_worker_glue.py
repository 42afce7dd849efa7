"""The stream worker's per-entry plumbing, driven directly (``StreamWorker.process`` on entries read
with XREADGROUP, no broker): the cheaper paths give the same outcomes as the ones they replace."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.envelope import decode_entry, encode_data
from vigil_shared.events import AlertReceived, DeadLetter, InvalidEvent, parse_event
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, StreamWorker

IN, OUT, GROUP, CONSUMER = "test.glue.in", "test.glue.out", "gluers", "g1"


def alert(n: int) -> AlertReceived:
    return AlertReceived(
        correlation_id=f"c{n}", producer="t", alert_id=f"al_{n}", source_kind="api", source_name="t", text="x"
    )


def test_publication_keeps_the_dataclass_behaviour() -> None:
    event = alert(1)
    p = Publication("s", event)
    assert (p.stream, p.event, p.data) == ("s", event, None)
    q = Publication(stream="s", event=None, data=b"d")
    assert (q.stream, q.event, q.data) == ("s", None, b"d")
    assert Publication("s", None, b"d") == q
    assert hash(Publication("s", None, b"d")) == hash(q)
    assert repr(q) == "Publication(stream='s', event=None, data=b'd')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.stream = "t"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Publication("s")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Publication("s", None, b"d", 1)  # type: ignore[call-arg]
    assert dataclasses.replace(q, data=b"e") == Publication("s", None, b"e")
    assert not hasattr(q, "__dict__")


async def _read(redis: Redis, bodies: Sequence[dict[bytes, bytes]]) -> list[Any]:
    await redis.xgroup_create(IN, GROUP, id="0", mkstream=True)
    for fields in bodies:
        await redis.xadd(IN, fields)  # type: ignore[arg-type]
    reply = await redis.xreadgroup(GROUP, CONSUMER, {IN: ">"}, count=100)
    return list(reply[0][1])


def _worker(redis: Redis, redis_url: str, handler: Any, **kwargs: Any) -> StreamWorker[AlertReceived]:
    worker = StreamWorker(
        service="tester",
        stream=IN,
        group=GROUP,
        model=AlertReceived,
        batch_handler=handler,
        settings=VigilSettings(redis_url=redis_url, consumer_name=CONSUMER, retention_interval_s=0),
        consumer=CONSUMER,
        **kwargs,
    )
    worker.redis = redis
    return worker


async def test_default_parse_dead_letters_with_parse_events_reason(redis: Redis, redis_url: str) -> None:
    """The default parse validates with the model's validator in the loop; a refusal's dead letter
    carries exactly the reason ``parse_event`` gives (InvalidEvent), the valid entries flow."""
    bad_bodies = [
        b'{"correlation_id": "c", "producer": "p"}',
        b'{"correlation_id": "c", "producer": "p", "schema_version": 9, "alert_id": "a", '
        b'"source_kind": "api", "source_name": "s", "text": "t"}',
        b"not json",
    ]
    good = alert(7)
    entries = await _read(
        redis,
        [{b"__data__": encode_data(good)}]
        + [{b"__data__": encode_data(good)[: -len(good.model_dump_json())] + body} for body in bad_bodies],
    )
    seen: list[AlertReceived] = []

    async def handler(events: Sequence[AlertReceived]) -> list[list[Publication]]:
        seen.extend(events)
        return [[Publication(OUT, e)] for e in events]

    await _worker(redis, redis_url, handler).process(entries)
    assert seen == [good]
    out = [parse_event(AlertReceived, decode_entry(f)[0]) for _, f in await redis.xrange(OUT)]
    assert out == [good]
    dead = [parse_event(DeadLetter, decode_entry(f)[0]) for _, f in await redis.xrange(streams.DEADLETTER)]
    expected = []
    for body in bad_bodies:
        with pytest.raises(InvalidEvent) as info:
            parse_event(AlertReceived, body)
        expected.append(str(info.value))
    assert [d.error for d in dead] == expected
    assert [d.entry_id for d in dead] == [eid.decode() for eid, _ in entries[1:]]
    assert int((await redis.xpending(IN, GROUP))["pending"]) == 0


async def test_a_custom_parse_validation_error_is_not_turned_into_a_dead_letter(redis: Redis, redis_url: str) -> None:
    """A ``parse=`` hook that lets a pydantic ValidationError out (instead of InvalidEvent) fails the
    batch as before; only the default parse's refusals become InvalidEvent."""
    entries = await _read(redis, [{b"__data__": encode_data(alert(1))}])

    def parse(body: bytes) -> AlertReceived:
        return AlertReceived.model_validate_json(b"{}")

    async def handler(events: Sequence[AlertReceived]) -> list[list[Publication]]:
        return [[] for _ in events]

    with pytest.raises(ValidationError):
        await _worker(redis, redis_url, handler, parse=parse).process(entries)


async def test_entries_flow_through_the_broker_one_by_one(redis: Redis, redis_url: str) -> None:
    """Entries read by FastStream's batch subscriber reach the batch handler, are committed and
    acknowledged (the worker's read path end to end, with the cheaper per-entry plumbing)."""
    from vigil_shared.runtime import make_broker

    seen: list[str] = []

    async def handler(events: Sequence[AlertReceived]) -> list[list[Publication]]:
        seen.extend(e.alert_id for e in events)
        return [[Publication(OUT, e)] for e in events]

    settings = VigilSettings(redis_url=redis_url, consumer_name=CONSUMER, block_ms=50, retention_interval_s=0)
    worker = StreamWorker(
        service="tester", stream=IN, group=GROUP, model=AlertReceived, batch_handler=handler, settings=settings
    )
    broker = make_broker(redis_url)
    worker.attach(broker)
    await worker.prepare(redis)
    await broker.start()
    await worker.start_background(redis)
    try:
        for n in range(3):
            await redis.xadd(IN, {b"__data__": encode_data(alert(n))})
            for _ in range(200):
                if len(seen) > n:
                    break
                await asyncio.sleep(0.02)
        assert seen == ["al_0", "al_1", "al_2"]
        for _ in range(200):  # the last batch's commit follows its handler call
            if await redis.xlen(OUT) == 3:
                break
            await asyncio.sleep(0.02)
        assert await redis.xlen(OUT) == 3
    finally:
        await worker.stop()
        await broker.stop()
    assert int((await redis.xpending(IN, GROUP))["pending"]) == 0
