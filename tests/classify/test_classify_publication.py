"""classify publishes its result without re-validating it (``vigil_classify.service.classified_event``):
the published bytes must be those of the validated event and parse back as the same ``AlertClassified``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from vigil_classify.engine import Classifier
from vigil_classify.service import alert_payload, classified_event, classifier_inputs, validated_event
from vigil_shared.envelope import decode_body, decode_entry, encode_event_faststream, encode_event_sync
from vigil_shared.events import AlertClassified, AlertReceived

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_published_bytes_are_a_valid_alert_classified_equal_to_the_validated_path(
    classifier: Classifier, dev_received: list[AlertReceived]
) -> None:
    alerts = dev_received
    assert len(alerts) >= 20
    for alert in alerts:
        fast = classified_event(classifier, alert)
        ref = validated_event(classifier, alert)
        # the same event apart from the fresh ids: give the reference the fast one's
        ref = ref.model_copy(update={"event_id": fast.event_id, "occurred_at": fast.occurred_at})
        fast_fields = encode_event_sync(fast)
        assert fast_fields == encode_event_sync(ref), alert.alert_id  # byte-identical entry
        parsed = AlertClassified.model_validate_json(decode_body(fast_fields))
        assert parsed == AlertClassified.model_validate_json(ref.model_dump_json())
        assert parsed.alert == alert
        assert parsed.classification == ref.classification
        assert parsed.correlation_id == alert.correlation_id
        assert parsed.producer == "classify"
        assert type(parsed) is AlertClassified


def test_alert_payload_is_the_payload_of_the_classifier_inputs(
    classifier: Classifier, dev_received: list[AlertReceived]
) -> None:
    """The service's call with the keywords spelt out classifies with the same inputs, CAP values
    included (every third dev alert carries them, and they win over the text's)."""
    with_cap = 0
    for alert in dev_received:
        payload = alert_payload(classifier, alert)
        assert payload == classifier.classify_payload(alert.text, **classifier_inputs(alert)), alert.alert_id
        if alert.cap is not None:
            with_cap += 1
            cap = alert.cap
            assert (payload["urgency"], payload["severity"], payload["certainty"]) == (
                cap.urgency,
                cap.severity,
                cap.certainty,
            )
    assert with_cap >= 5


async def test_fast_event_entry_is_what_faststream_writes(
    classifier: Classifier, dev_received: list[AlertReceived]
) -> None:
    alert = dev_received[0]
    alert = alert.model_copy(update={"correlation_id": "ascii-only"})  # FastStream's length quirk
    fast = classified_event(classifier, alert)
    assert encode_event_sync(fast) == await encode_event_faststream(fast)
    body, headers = decode_entry(encode_event_sync(fast))
    assert headers["event_type"] == "alert.classified"
    assert AlertClassified.model_validate_json(body).alert == alert


def test_fresh_ids_per_event(classifier: Classifier, dev_received: list[AlertReceived]) -> None:
    alert = dev_received[1]
    one, two = classified_event(classifier, alert), classified_event(classifier, alert)
    assert one.event_id != two.event_id
    assert one.occurred_at.tzinfo is not None
    assert one.schema_version == 1


HOSTILE = (
    'Quotes " and \\ backslashes, tab\t, newline\n, control \x01\x1f, DEL \x7f, \u2028 \u2029, é, Москва, 😀, </script>'
)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_hostile_strings_and_timestamps_give_the_same_bytes(classifier: Classifier, when: datetime) -> None:
    alert = AlertReceived(
        correlation_id="corr " + HOSTILE,
        producer="ingest",
        alert_id="al " + HOSTILE,
        source_kind="cap",
        source_name=HOSTILE,
        issuer="U.S. Embassy Moscow",
        title="Protests in Moscow " + HOSTILE,
        text="Demonstrations near the metro in Moscow, Russia turned violent. " + HOSTILE,
        extra={"k": HOSTILE, "n": [1, 2.5, None, True], "nested": {"x": 1e-05}},
    )
    fast = classified_event(classifier, alert).model_copy(update={"occurred_at": when, "event_id": HOSTILE})
    ref = validated_event(classifier, alert).model_copy(update={"occurred_at": when, "event_id": HOSTILE})
    assert fast.model_dump_json() == ref.model_dump_json()
    assert encode_event_sync(fast) == encode_event_sync(ref)
    assert AlertClassified.model_validate_json(decode_body(encode_event_sync(fast))) == ref
    assert fast.model_dump_json(indent=2) == ref.model_dump_json(indent=2)  # pydantic's path for options
