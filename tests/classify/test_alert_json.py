"""classify writes the alert inside ``AlertClassified`` with orjson when orjson writes it as pydantic
does (``vigil_classify.service._orjson_writes_as_pydantic``), else with pydantic: either way the bytes
must be those of the fully validated event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vigil_classify import service
from vigil_classify.engine import Classifier
from vigil_shared.bench import _alert, make_texts
from vigil_shared.events import SCHEMA_VERSION, AlertClassified, AlertReceived, CapInfo

HOSTILE = (
    'Quotes " and \\ backslashes, tab\t, newline\n, control \x00\x01\x1f, DEL \x7f, \u2028 \u2029, é, Москва, '
    "😀, </script>, \ufeff\ufffe"
)

_OFFSETS = (
    UTC,
    timezone(timedelta(0)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=9, minutes=45)),
    timezone(timedelta(seconds=30)),  # not a whole minute: pydantic's path
    timezone(-timedelta(minutes=1, seconds=1)),
    None,  # naive
)


def _reference(classifier: Classifier, alert: AlertReceived, event_id: str, when: datetime) -> bytes:
    ref = service.validated_event(classifier, alert).model_copy(update={"event_id": event_id, "occurred_at": when})
    return ref.model_dump_json().encode()


def _fast(classifier: Classifier, alert: AlertReceived, event_id: str, when: datetime) -> bytes:
    payload = service.alert_payload(classifier, alert)
    return service._classified_json(event_id, when, SCHEMA_VERSION, alert.correlation_id, "classify", alert, payload)


def _variants() -> list[AlertReceived]:
    base = [_alert(i, title, text) for i, (title, text) in enumerate(make_texts(40))]
    out: list[AlertReceived] = []
    for i, alert in enumerate(base):
        tz = _OFFSETS[i % len(_OFFSETS)]
        moment = datetime(2026, 1, 2, 3, 4, 5, (i * 7919) % 1_000_000 if i % 3 else 0, tzinfo=tz)
        update: dict[str, object] = {"published": moment, "occurred_at": moment}
        if i % 4 == 1:
            update |= {"title": HOSTILE, "issuer": HOSTILE, "url": "https://example.org/a?b=" + HOSTILE}
        if i % 5 == 2:
            update |= {"revision": 2**64 + i, "revision_of": "first"}  # orjson refuses: pydantic's path
        if i % 7 == 3:
            update |= {"extra": {"k": HOSTILE, "n": [1, 2.5, None, True], "nested": {"x": 1e-05}}}
        if i % 9 == 4:
            update |= {
                "cap": CapInfo(identifier="id", sender="s", sent=moment, urgency="Immediate", headline=HOSTILE)
            }
        out.append(AlertReceived.model_validate({**alert.__dict__, **update}))
    # as read from a stream: datetimes with pydantic's own tzinfo type
    out += [AlertReceived.model_validate_json(a.model_dump_json()) for a in list(out)]
    return out


def test_alert_json_is_the_validated_events_json(classifier: Classifier) -> None:
    fast_paths = 0
    for i, alert in enumerate(_variants()):
        when = datetime(2026, 11, 26, 5, 0, 0, i % 2 * 123456, tzinfo=UTC)
        event_id = HOSTILE if i % 2 else "0" * 32
        assert _fast(classifier, alert, event_id, when) == _reference(classifier, alert, event_id, when), alert
        fast_paths += service._orjson_writes_as_pydantic(alert)
    assert fast_paths >= 20  # both paths are exercised
    assert fast_paths < len(_variants())


def test_event_time_with_any_offset(classifier: Classifier) -> None:
    alert = _alert(0, *make_texts(1)[0])
    for tz in _OFFSETS:
        for micro in (0, 1, 999_999):
            when = datetime(2026, 11, 26, 5, 0, 0, micro, tzinfo=tz)
            assert _fast(classifier, alert, "e", when) == _reference(classifier, alert, "e", when), when


def test_lone_surrogates_take_pydantics_path(classifier: Classifier) -> None:
    alert = _alert(0, *make_texts(1)[0]).model_copy(update={"title": "a \ud800 b"})
    when = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    try:
        ref = _reference(classifier, alert, "e", when)
    except Exception as exc:
        with pytest.raises(type(exc)):
            _fast(classifier, alert, "e", when)
    else:
        assert _fast(classifier, alert, "e", when) == ref


def test_a_subclass_takes_pydantics_path() -> None:
    class Sub(AlertReceived):
        pass

    alert = _alert(0, *make_texts(1)[0])
    assert service._orjson_writes_as_pydantic(alert)
    assert not service._orjson_writes_as_pydantic(Sub.model_validate(alert.__dict__))


_text = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    title=_text,
    text=_text,
    issuer=st.none() | _text,
    url=st.none() | _text,
    revision=st.integers(min_value=1, max_value=2**70),
    published=st.none() | st.datetimes(timezones=st.none() | st.timezones()),
)
def test_generated_alerts(
    title: str, text: str, issuer: str | None, url: str | None, revision: int, published: datetime | None
) -> None:
    classifier = _shared_classifier()
    alert = AlertReceived(
        correlation_id="c" + text[:5],
        producer="ingest",
        alert_id="a" + title[:5],
        revision=revision,
        source_kind="rss",
        source_name=text[:3],
        issuer=issuer,
        title=title,
        text=text,
        url=url,
        published=published,
    )
    when = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    try:
        ref = _reference(classifier, alert, "e", when)
    except Exception as exc:  # pydantic refuses it (e.g. a datetime it cannot write): so must classify
        with pytest.raises(type(exc)):
            _fast(classifier, alert, "e", when)
        return
    assert _fast(classifier, alert, "e", when) == ref


@cache
def _shared_classifier() -> Classifier:  # (hypothesis runs the test many times: one classifier)
    return Classifier()


def test_utc_occurred_at_still_checks_published() -> None:
    """The UTC shortcut of ``_orjson_writes_as_pydantic`` skips the offset test of a UTC ``occurred_at``
    only: a ``published`` with a sub-minute offset still takes pydantic's path, whatever ``occurred_at``."""
    alert = AlertReceived.model_validate_json(_alert(0, *make_texts(1)[0]).model_dump_json())
    assert alert.occurred_at.tzinfo is service._PYDANTIC_UTC  # read from JSON: pydantic's shared UTC
    odd = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(seconds=30)))
    for occurred_at in (alert.occurred_at, alert.occurred_at.astimezone(UTC)):
        assert service._orjson_writes_as_pydantic(alert.model_copy(update={"occurred_at": occurred_at}))
        assert not service._orjson_writes_as_pydantic(
            alert.model_copy(update={"occurred_at": occurred_at, "published": odd})
        )
        assert not service._orjson_writes_as_pydantic(alert.model_copy(update={"occurred_at": odd}))


def test_classified_data_is_the_validated_events_json(classifier: Classifier) -> None:
    """The service's own path (:func:`service.classified_data`, which writes the usual case out instead of
    calling ``_classified_json``): the validated event's JSON with the entry's fresh id and time."""
    from vigil_shared.envelope import decode_body

    for alert in _variants():
        before = datetime.now(UTC)
        body = decode_body({b"__data__": service.classified_data(classifier, alert)})
        parsed = AlertClassified.model_validate_json(body)
        assert before <= parsed.occurred_at <= datetime.now(UTC)
        assert parsed.occurred_at.utcoffset() == timedelta(0)
        assert len(parsed.event_id) == 32
        assert body == _reference(classifier, alert, parsed.event_id, parsed.occurred_at), alert
