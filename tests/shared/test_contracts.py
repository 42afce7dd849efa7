"""Event contracts: JSON round trips, version and malformed-entry rejection."""

from __future__ import annotations

import json

import pytest
from vigil_shared.envelope import MalformedEntry, decode_entry, encode_event, fields_to_text, text_to_fields
from vigil_shared.events import (
    SCHEMA_VERSION,
    AlertClassified,
    AlertReceived,
    CapArea,
    CapInfo,
    Classification,
    DeadLetter,
    Event,
    Evidence,
    InvalidEvent,
    LabelScore,
    Location,
    NotificationDelivered,
    NotificationFailed,
    parse_event,
)


def _alert(**kw: object) -> AlertReceived:
    base: dict[str, object] = dict(
        correlation_id="c1",
        producer="test",
        alert_id="al_1",
        source_kind="api",
        source_name="t",
        title="Security Alert",
        text="Threats to metro stations in Moscow.",
    )
    base.update(kw)
    return AlertReceived.model_validate(base)


def _examples() -> list[Event]:
    cap = CapInfo(
        identifier="x",
        sender="s@example.org",
        sent="2026-11-25T10:00:00Z",
        msg_type="Update",
        references=("s@example.org,x0,2026-11-25T09:00:00Z",),
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        areas=(CapArea(area_desc="Hatay", circles=("36.2,36.1 50",), geocodes={"FIPS": "1"}),),
    )
    alert = _alert(cap=cap, extra={"foo": [1, 2]})
    cls = Classification(
        id="al_1",
        is_threat=True,
        threat_types=(
            LabelScore(type="terrorism", confidence=0.9, evidence=(Evidence(text="a", start=0, end=1),)),
        ),
        locations=(
            Location(name="Moscow", country_code="RU", geonameid=524901, latitude=55.75, longitude=37.62),
        ),
        countries=("RU",),
        urgency="Expected",
        severity="Severe",
        certainty="Likely",
        classifier_version="t",
    )
    return [
        alert,
        AlertClassified(correlation_id="c1", producer="classify", alert=alert, classification=cls),
        NotificationDelivered(
            correlation_id="c1",
            producer="notify",
            alert_id="al_1",
            subscription_id="s",
            channel="console://",
            idempotency_key="k",
        ),
        NotificationFailed(
            correlation_id="c1",
            producer="notify",
            alert_id="al_1",
            subscription_id="s",
            channel="console://",
            idempotency_key="k",
            error="boom",
            permanent=True,
        ),
        DeadLetter(
            correlation_id="c1",
            producer="classify",
            stream="s",
            group="g",
            service="classify",
            entry_id="1-0",
            fields={"a": "b"},
            error="bad",
            attempts=3,
        ),
    ]


@pytest.mark.parametrize("event", _examples(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json(event: Event) -> None:
    again = type(event).model_validate_json(event.model_dump_json())
    assert again == event
    assert again.schema_version == SCHEMA_VERSION


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    alert = _alert()
    with pytest.raises(Exception, match="frozen"):
        alert.title = "changed"  # type: ignore[misc]
    data = json.loads(alert.model_dump_json())
    data["surprise"] = 1
    with pytest.raises(InvalidEvent, match="surprise"):
        parse_event(AlertReceived, json.dumps(data))


def test_newer_schema_version_is_rejected_with_a_clear_reason() -> None:
    data = json.loads(_alert().model_dump_json())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(InvalidEvent) as info:
        parse_event(AlertReceived, json.dumps(data))
    assert info.value.unsupported_version
    assert "newer than this consumer understands" in str(info.value)


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b'{"alert_id": 3}'])
def test_malformed_payload_is_rejected(payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="not a valid AlertReceived"):
        parse_event(AlertReceived, payload)


async def test_envelope_round_trip_and_malformed_entries() -> None:
    alert = _alert()
    fields = await encode_event(alert)
    body, headers = decode_entry(fields)
    assert parse_event(AlertReceived, body) == alert
    assert headers["correlation_id"] == "c1"
    assert headers["event_type"] == "alert.received"
    with pytest.raises(MalformedEntry, match="no __data__"):
        decode_entry({b"x": b"y"})
    # binary fields survive the dead-letter text form
    assert text_to_fields(fields_to_text(fields)) == fields
