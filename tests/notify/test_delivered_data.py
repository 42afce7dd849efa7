"""notify writes the stream entry of each NotificationDelivered itself (``Publication(data=...)``):
byte for byte what the stream worker's ``encode_data`` (pydantic's serialiser) makes of the event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from vigil_notify.delivery import _delivered_event, _event_ids, delivered_data, occurred_at_json
from vigil_notify.notifier import HandleResult, Notifier
from vigil_notify.service import _publications
from vigil_notify.subscriptions import SubscriptionStore
from vigil_shared import streams
from vigil_shared.envelope import encode_data
from vigil_shared.events import NotificationDelivered, NotificationFailed, new_event_id

from .helpers import make_alert, make_sub
from .test_notifier import Clock, lines, no_sleep

HOSTILE = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "".join(chr(c) for c in range(0x20)),  # every control character (short and \\u00XX escapes)
    "DEL \x7f, NEL \x85, LS \u2028, PS \u2029, BOM \ufeff",
    "Zürich, İstanbul, Москва, 東京, emoji 😀 and a combining e\u0301",
    '{"json": ["inside", 1]}',
    "\\u0000 written out",
]


def _values(**over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": new_event_id(),
        "occurred_at": datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC),
        "schema_version": 1,
        "correlation_id": "corr-1",
        "producer": "notify",
        "alert_id": "a1",
        "revision": 1,
        "subscription_id": "desk",
        "channel": "jsonl:///tmp/out.jsonl",
        "kind": "new",
        "attempt": 1,
        "idempotency_key": "0123456789abcdef0123456789abcdef",
        "reason": "in Moscow, RU",
    }
    values.update(over)
    return values


def _cases() -> Iterator[dict[str, Any]]:
    for field in ("correlation_id", "producer", "alert_id", "subscription_id", "channel", "idempotency_key", "reason"):
        for s in HOSTILE:
            yield _values(**{field: s})
    for kind in ("new", "update", "cancel", "digest"):
        yield _values(kind=kind, revision=7, attempt=3)
    yield _values(revision=2**40, attempt=12)
    for at in (
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime.now(UTC),
    ):
        yield _values(occurred_at=at)


def test_delivered_data_is_the_workers_encoding_byte_for_byte() -> None:
    heads: dict[str, bytes] = {}
    n = 0
    for values in _cases():
        event = _delivered_event(dict(values))
        expected = encode_data(event)
        # the event is a valid one: the same bytes as the validated event's encoding
        assert encode_data(NotificationDelivered.model_validate(event.model_dump())) == expected
        at_json = occurred_at_json(values["occurred_at"])
        assert delivered_data(values, at_json) == expected
        assert delivered_data(values, at_json, heads) == expected  # headers cached per correlation id
        assert delivered_data(values, at_json, heads) == expected  # and taken from the cache
        n += 1
    assert n > 50
    assert len(heads) > 1


@pytest.mark.parametrize(
    "over",
    [
        {"reason": "lone surrogate \ud800"},  # pydantic refuses it too: the worker reports its error
        {"revision": True},  # not a plain int: left to pydantic
        {"attempt": 1.0},
        {"reason": None},
        {"event_id": 12345},  # not a str: orjson would write it, pydantic refuses it
        {"idempotency_key": None},
        {"channel": ["not", "a", "str"]},
        {"kind": 7},
        {"correlation_id": b"bytes"},
    ],
)
def test_values_it_does_not_write_are_left_to_the_worker(over: dict[str, Any]) -> None:
    values = _values(**over)
    assert delivered_data(values, occurred_at_json(values["occurred_at"])) is None
    assert delivered_data(values, occurred_at_json(values["occurred_at"]), {}) is None


@pytest.mark.parametrize("n", [0, 1, 2, 17, 500])
def test_event_ids_of_a_batch_are_uuid4_hex_like_one_by_one(n: int) -> None:
    ids = _event_ids(n)
    assert len(ids) == n == len(set(ids))
    for x in ids:
        u = uuid.UUID(hex=x)
        assert (u.hex, u.version, u.variant) == (x, 4, uuid.RFC_4122)


def test_event_ids_keep_the_122_random_bits_random() -> None:
    """Every bit outside the version and variant is seen both set and clear over a few hundred ids
    (the translates touch bytes 6 and 8 of each id only, and only their fixed bits)."""
    ids = [int(x, 16) for x in _event_ids(400)]
    fixed = (0xF << 76) | (0x3 << 62)
    ones = zeros = 0
    for v in ids:
        ones |= v
        zeros |= ~v
    assert ones & ~fixed == (2**128 - 1) & ~fixed
    assert zeros & ~fixed & (2**128 - 1) == (2**128 - 1) & ~fixed
    assert all((v >> 76) & 0xF == 4 and (v >> 62) & 0x3 == 0b10 for v in ids)


def notifier(redis, settings) -> Notifier:  # type: ignore[no-untyped-def]
    return Notifier(redis, settings=settings, clock=Clock(), sleep=no_sleep)


def _check_publications(result: HandleResult) -> int:
    """Each delivered event's publication carries the worker's encoding of it; the others none."""
    pubs = _publications(result)
    encoded = 0
    for e, p in zip(result.events, pubs, strict=False):
        assert p.stream == streams.NOTIFICATIONS
        assert p.event is e
        if isinstance(e, NotificationDelivered):
            assert p.data == encode_data(e)
            encoded += 1
        else:
            assert isinstance(e, NotificationFailed)
            assert p.data is None
    return encoded


async def test_batch_publications_carry_the_encoded_delivered_events(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("desk", [f"jsonl://{out}", "console://"]))
    await store.put(make_sub("ru", [f"jsonl://{out}"], countries=["RU"]))
    n = notifier(redis, settings)
    batch = [
        make_alert(alert_id="e1"),
        make_alert(alert_id="e2", title='Zürich "quoted" \\ alert', text="Москва 😀\x7f\t text"),
        make_alert(alert_id="e1", revision=2, revision_of="e1", title="e1 updated", text="v2"),
    ]
    results = await n.process_many(batch)
    total = 0
    for r in results:
        assert isinstance(r, HandleResult), r
        total += _check_publications(r)
    assert total == 9 == len(lines(out)) + 3  # 2 JSONL + 1 console per alert
    await n.aclose()


async def test_a_delivery_after_a_failed_attempt_carries_its_encoding(redis, settings, receiver_factory) -> None:
    rx = receiver_factory(plan=lambda n: 503 if n <= 1 else 200)
    await SubscriptionStore(redis).put(make_sub("hook", [rx.webhook_url()]))
    n = notifier(redis, settings.model_copy(update={"max_attempts": 3}))
    (r,) = await n.process_many([make_alert(alert_id="w1")])
    assert isinstance(r, HandleResult), r
    assert [type(e).__name__ for e in r.events] == ["NotificationFailed", "NotificationDelivered"]
    assert _check_publications(r) == 1
    await n.aclose()


def test_data_of_is_by_identity() -> None:
    values = _values()
    event = _delivered_event(dict(values))
    twin = _delivered_event(dict(values))
    assert twin == event
    result = HandleResult(events=[event])
    result.encoded[id(event)] = (event, b"data")
    assert result.data_of(event) == b"data"
    assert result.data_of(twin) is None  # an equal event is not the one encoded


async def test_publications_count_each_outcome_and_end_with_the_dead_letters(redis, settings, receiver_factory) -> None:
    from collections import Counter

    rx = receiver_factory(plan=lambda n: 400)  # a permanent failure: one failed event and a dead letter
    store = SubscriptionStore(redis)
    await store.put(make_sub("hook", [rx.webhook_url()]))
    await store.put(make_sub("con", ["console://"]))
    n = notifier(redis, settings)
    (r,) = await n.process_many([make_alert(alert_id="p1")])
    assert isinstance(r, HandleResult), r
    counts: Counter[tuple[str, str]] = Counter()
    pubs = _publications(r, counts)
    assert [p.stream for p in pubs] == [streams.NOTIFICATIONS] * len(r.events) + [streams.DEADLETTER]
    assert [p.event for p in pubs] == [*r.events, *r.dead_letters]
    (failed,) = [e for e in r.events if isinstance(e, NotificationFailed)]
    assert failed.channel.startswith("webhook+")
    assert counts == {("console://", "delivered"): 1, (failed.channel, "failed_permanent"): 1}
    await n.aclose()


@pytest.mark.parametrize("value", ["", "0123abcdefABCDEF", "a" * 64, "hex-with-dash", "é1", "a\x00", 'q"', "x\\", "1²"])
def test_token_fast_path_equals_the_escaper(value: str) -> None:
    from vigil_notify.rendering import _json_str, _json_token

    assert _json_token(value) == _json_str(value)


def _job_cases() -> Iterator[dict[str, Any]]:
    yield from _cases()
    yield _values(reason="lone surrogate \ud800")  # what delivered_data leaves to the worker
    yield _values(revision=True)
    yield _values(reason=None)
    yield _values(idempotency_key=None)
    yield _values(kind=7)
    yield _values(correlation_id=b"bytes")


def test_delivered_many_makes_each_event_and_its_data_as_delivered_data_does() -> None:
    """The deliverer's batch writes each event and its entry data inline: the event
    ``_delivered_event`` makes and the bytes (or None) of ``delivered_data``, for every job."""
    from redis.asyncio import Redis
    from vigil_notify.channels.base import Message
    from vigil_notify.channels.registry import default_registry
    from vigil_notify.delivery import Deliverer, DeliveryJob
    from vigil_notify.settings import NotifySettings
    from vigil_notify.subscriptions import mask_url

    message = Message(title="t", text="x", markdown="x", html="x")
    deliverer = Deliverer(Redis.from_url("redis://127.0.0.1:1/0"), default_registry(), NotifySettings(), owner="t")
    at = datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC)
    cases = list(_job_cases())
    jobs = [
        DeliveryJob(v["alert_id"], v["revision"], v["correlation_id"], v["subscription_id"], v["channel"], v["kind"],
                    v["reason"], v["idempotency_key"], message)
        for v in cases
    ]  # fmt: skip
    ids = _event_ids(len(jobs))
    for attempt in (1, 3):
        outcomes = deliverer._delivered_many(jobs, at, ids, attempt=attempt, debug=False)
        assert len(outcomes) == len(jobs)
        for job, event_id, outcome in zip(jobs, ids, outcomes, strict=True):
            values = {
                "event_id": event_id, "occurred_at": at, "schema_version": 1,
                "correlation_id": job.correlation_id, "producer": NotifySettings().producer,
                "alert_id": job.alert_id, "revision": job.revision, "subscription_id": job.subscription_id,
                "channel": mask_url(job.channel_url), "kind": job.kind, "attempt": attempt,
                "idempotency_key": job.idempotency_key, "reason": job.reason,
            }  # fmt: skip
            (event,) = outcome.events
            assert (outcome.job, outcome.status, outcome.dead_letter) == (job, "delivered", None)
            assert event.__dict__ == values
            assert list(event.__dict__) == list(values)
            assert event.model_fields_set == set(NotificationDelivered.model_fields)
            assert event.__pydantic_extra__ is None
            assert event.__pydantic_private__ is None
            assert outcome.data == delivered_data(values, occurred_at_json(at))
    assert sum(o.data is None for o in outcomes) == 6


def test_sent_records_are_the_recipient_records_and_keys_of_the_jobs() -> None:
    """The "sent" script's records and keys of a batch (:func:`sent_records`, compiled) are what the
    deliverer's loop made: per original key, in first-seen order, each member once with its last
    job's reason; the keys in job order."""
    import random

    from vigil_notify.channels.base import Message
    from vigil_notify.delivered import sent_records
    from vigil_notify.delivery import DeliveryJob, channel_hash

    def reference(jobs: list[DeliveryJob]) -> tuple[list[list[str]], list[str]]:
        records: dict[str, dict[str, str]] = {}
        for job in jobs:
            if job.record_under:
                member = f"{job.subscription_id}|{channel_hash(job.channel_url)}"
                for original in job.record_under:
                    records.setdefault(original, {})[member] = job.reason
        packed: list[list[str]] = []
        for original, mapping in records.items():
            rec = [original]
            for member, reason in mapping.items():
                rec += (member, reason)
            packed.append(rec)
        return packed, [job.idempotency_key for job in jobs]

    rnd = random.Random(20261126)
    message = Message(title="t", text="x", markdown="x", html="x")
    for n in (0, 1, 2, 7, 60):
        jobs = [
            DeliveryJob(
                f"a{rnd.randrange(5)}", 1, "c" * 32, f"s{rnd.randrange(4)}é", f"jsonl:///tmp/{rnd.randrange(3)}.jsonl",
                "new", f"reason {i} \"q\" ü", f"{i:032x}", message,
                tuple(rnd.sample(["o1", "o2", "cap:x,1", "é"], rnd.randrange(4))),
            )
            for i in range(n)
        ]  # fmt: skip
        got = sent_records(jobs, channel_hash)
        assert got == reference(jobs)
        assert n < 7 or sum(len(r) for r in got[0]) > 4
