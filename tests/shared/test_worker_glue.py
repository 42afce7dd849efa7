"""The stream worker's per-entry plumbing, driven directly (``StreamWorker.process`` on entries read
with XREADGROUP, no broker): the cheaper paths give the same outcomes as the ones they replace."""

from __future__ import annotations

import asyncio
import copy
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
from vigil_shared.worker import Publication, StreamWorker, _read_batches, _xread_entries, _xread_entries_resp3

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


REPLIES = [
    None,
    [],
    [[b"s", []]],
    [[b"s", [[b"1-0", [b"__data__", b"x"]], [b"2-0", [b"a", b"1", b"b", b"2"]], [b"3-0", None]]]],
    [[b"s", [[b"1-0", []], None, [b"2-0", [b"__data__", b""]]]], [b"t", [[b"9-1", [b"k", b"v"]]]]],
]


def _shape(parsed: Any) -> Any:
    return [[type(s), [type(e) for e in es]] for s, es in parsed]


@pytest.mark.parametrize("reply", REPLIES)
def test_xread_entries_is_redis_pys_parse_xread(reply: Any) -> None:
    from redis._parsers.helpers import parse_xread

    expected = parse_xread(copy.deepcopy(reply))
    got = _xread_entries(copy.deepcopy(reply))
    assert got == expected
    assert _shape(got) == _shape(expected)


@pytest.mark.parametrize("reply", REPLIES)
def test_xread_entries_resp3_is_redis_pys_resp3_to_resp2_legacy(reply: Any) -> None:
    from redis._parsers.helpers import parse_xread_resp3_to_resp2_legacy

    resp3 = None if reply is None else {stream: entries for stream, entries in reply}
    expected = parse_xread_resp3_to_resp2_legacy(copy.deepcopy(resp3))
    got = _xread_entries_resp3(copy.deepcopy(resp3))
    assert got == expected
    assert _shape(got) == _shape(expected)


def test_xread_entries_leaves_the_claim_option_to_redis_py() -> None:
    reply = [[b"s", [[b"1-0", [b"k", b"v"], 5, 2]]]]
    assert _xread_entries(reply, claim_min_idle_time=10) == [[b"s", [(b"1-0", {b"k": b"v"}, 5, 2)]]]
    resp3 = {b"s": [[b"1-0", [b"k", b"v"], 5, 2]]}
    assert _xread_entries_resp3(resp3, claim_min_idle_time=10) == [[b"s", [(b"1-0", {b"k": b"v"}, 5, 2)]]]


async def test_the_broker_client_reads_with_it_and_the_worker_flows(redis: Redis, redis_url: str) -> None:
    """Once a read batch is in, the broker's client parses XREADGROUP with _xread_entries; the entries
    read that way flow as before (the other commands keep redis-py's callbacks)."""
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
        callbacks = worker._subscriber._client.response_callbacks
        assert callbacks["XREADGROUP"] in (_xread_entries, _xread_entries_resp3)
        assert callbacks["XREAD"] is not _xread_entries
        assert worker._subscriber._get_msgs.func is _read_batches  # FastStream's read step, per batch
    finally:
        await worker.stop()
        await broker.stop()
    assert int((await redis.xpending(IN, GROUP))["pending"]) == 0


async def test_read_batches_makes_faststreams_batch_message() -> None:
    """One message per stream of a read, with FastStream's keys and values (and the entries list);
    a subscriber with claim_min_idle_time runs FastStream's own method."""
    got: list[dict[str, Any]] = []
    reply = [[b"s", [(b"1-0", {b"k": b"v"}), (b"2-0", {b"__data__": b"x"})]], [b"t", []]]

    class Subscriber:
        claim_min_idle_time = None
        last_id = "0-0"
        asked: list[str] = []  # noqa: RUF012

        async def consume_one(self, msg: dict[str, Any]) -> None:
            got.append(msg)

    async def read(last_id: str) -> Any:
        Subscriber.asked.append(last_id)
        return reply

    sub = Subscriber()
    await _read_batches(sub, read)
    assert Subscriber.asked == ["0-0"]
    assert sub.last_id == "2-0"
    assert got == [
        {
            "type": "bstream",
            "channel": "s",
            "data": [{b"k": b"v"}, {b"__data__": b"x"}],
            "message_ids": [b"1-0", b"2-0"],
            "vigil_entries": reply[0][1],
        }
    ]

    class Claiming(Subscriber):
        claim_min_idle_time = 10

        async def _get_msgs(self, read: Any) -> None:
            got.append({"faststream": True})

    await _read_batches(Claiming(), read)
    assert got[-1] == {"faststream": True}
