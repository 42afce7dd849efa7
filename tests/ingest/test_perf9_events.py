"""intake's events written from the drafts' values by orjson (the ninth session's fast path) are the
bytes ``AlertReceived`` would give: the same values as to_alert_received, the same JSON as
model_dump_json, the same envelope; anything else takes the validated path."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic_core import PydanticSerializationError
from redis.asyncio import Redis
from vigil_ingest import intake
from vigil_ingest.dedup import Registration
from vigil_ingest.detect import parse_input
from vigil_ingest.drafts import AlertDraft, to_alert_received
from vigil_shared.bench import make_texts
from vigil_shared.envelope import decode_body, encode_data
from vigil_shared.events import AlertReceived, CapInfo

_ENVELOPE = ("event_id", "occurred_at")


def _reg(revision: int = 1) -> Registration:
    return Registration(
        alert_id="al_0123456789abcdef0123",
        revision=revision,
        revision_of="al_0123456789abcdef0123" if revision > 1 else None,
        is_new=revision == 1,
        is_duplicate=False,
    )


def _draft(**kw: Any) -> AlertDraft:
    values: dict[str, Any] = {"source_kind": "api", "source_name": "bench", "title": "T", "text": "Body."}
    values.update(kw)
    return AlertDraft(**values)


def _odd_text(rnd: random.Random) -> str:
    pool = [chr(c) for c in range(0x20)] + ['"', "\\", "/", "\x7f", "\u2028", "\u00e9", "\u4e2d", "\U0001f600", "a"]
    return "".join(rnd.choice(pool) for _ in range(rnd.randint(1, 60)))


def _usual_drafts() -> list[AlertDraft]:
    rnd = random.Random(9)
    drafts = [
        _draft(title=t, text=x, issuer="Benchmark Desk", language="en", source_key=f"bench-{i:07d}")
        for i, (t, x) in enumerate(make_texts(40, seed=3))
    ]
    drafts += [_draft(title=_odd_text(rnd), text=_odd_text(rnd), issuer=_odd_text(rnd)) for _ in range(200)]
    stamps = [
        datetime(2024, 3, 7, 18, 20, tzinfo=UTC),
        datetime(2024, 3, 7, 18, 20, 0, 500000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2024, 3, 7, 18, 20, 1, 7, tzinfo=timezone(timedelta(hours=14))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),  # noqa: UP017 (the other UTC object)
    ]
    drafts += [_draft(published=p, url="https://x.test/a?b=1") for p in stamps]
    drafts += [
        _draft(extra={"a": "b", "n": 3, "t": True, "none": None, "big": 2**62}, source_key="k"),
        _draft(extra={"source_key": "kept"}, source_key="other"),
        _draft(source_kind="rss", source_name="feed \u00e9", source_key="tag:x,2024:1", language=None),
    ]
    drafts += [
        _draft(published=p)
        for p in (
            datetime.fromisoformat("2024-03-07T18:20:00+00:00"),
            datetime.fromisoformat("2024-03-07T18:20:00.123+02:00"),
        )
    ]
    return drafts


@pytest.mark.parametrize("revision", [1, 3])
def test_usual_drafts_give_the_validated_events_bytes(revision: int) -> None:
    assert intake._WRITTEN_HERE
    for draft in _usual_drafts():
        values = intake._event_values(draft, "c0ffee")
        assert values is not None, draft
        event = AlertReceived.model_validate(
            {
                **values,
                "alert_id": _reg(revision).alert_id,
                "revision": revision,
                "revision_of": _reg(revision).revision_of,
            }
        )
        reference = to_alert_received(
            draft,
            alert_id=_reg(revision).alert_id,
            revision=revision,
            revision_of=_reg(revision).revision_of,
            correlation_id="c0ffee",
        )
        assert event.model_dump(exclude=set(_ENVELOPE)) == reference.model_dump(exclude=set(_ENVELOPE))
        data = intake._entry_data(values, _reg(revision))
        assert data == encode_data(event)
        assert decode_body({b"__data__": data}) == event.model_dump_json().encode()


def test_other_drafts_take_the_validated_path() -> None:
    cap = CapInfo(identifier="id-1", sender="s@x.test", sent=datetime(2024, 1, 1, tzinfo=UTC))
    others = [
        _draft(cap=cap),
        _draft(extra={"f": 1.5}),
        _draft(extra={"nested": {"a": 1}}),
        _draft(extra={"l": [1, 2]}),
        _draft(published=datetime(2024, 1, 1)),  # naive
        _draft(published=datetime(2024, 1, 1, tzinfo=timezone(timedelta(seconds=30)))),
        _draft().model_copy(update={"source_kind": "carrier-pigeon"}),
        _draft().model_copy(update={"title": 5}),
    ]
    assert [intake._event_values(d, "c") for d in others] == [None] * len(others)


def test_what_orjson_refuses_fails_as_the_event_does() -> None:
    draft = _draft(text="lone \ud800 surrogate")
    values = intake._event_values(draft, "c")
    assert values is not None
    with pytest.raises(PydanticSerializationError) as ours:
        intake._entry_data(values, _reg())
    event = to_alert_received(draft, alert_id=_reg().alert_id, correlation_id="c")
    with pytest.raises(PydanticSerializationError) as theirs:
        encode_data(event)
    assert str(ours.value) == str(theirs.value)
    # an integer beyond 64 bits: orjson refuses it, the event's own encoding writes it
    big = _draft(extra={"n": 2**70})
    values = intake._event_values(big, "c")
    assert values is not None
    event = AlertReceived.model_validate({**values, "alert_id": _reg().alert_id})
    assert intake._entry_data(values, _reg()) == encode_data(event)


async def test_accept_publishes_the_events_of_the_posted_body(redis: Redis, stream_alerts: Any) -> None:
    texts = make_texts(30, seed=5)
    body = orjson.dumps(
        [{"id": f"b-{i}", "title": t, "text": x, "issuer": "Desk", "x": 1} for i, (t, x) in enumerate(texts)]
    )
    drafts = list(parse_input(body, content_type="application/json").drafts)
    results = await intake.accept(redis, drafts)
    events: list[AlertReceived] = await stream_alerts(redis)
    assert [e.correlation_id for e in events] == [r.correlation_id for r in results]
    for draft, result, event in zip(drafts, results, events, strict=True):
        reference = to_alert_received(draft, alert_id=result.alert_id, correlation_id=result.correlation_id or "")
        assert event.model_dump(exclude=set(_ENVELOPE)) == reference.model_dump(exclude=set(_ENVELOPE))
        assert event.occurred_at.tzinfo is not None
        assert len(event.event_id) == 32
