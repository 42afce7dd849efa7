"""notify's read of an AlertClassified entry (vigil_notify.classified.decode_classified): what notify
reads is what the contract's full decode gives, the entry's exact JSON is what its serialisation
gives (dead letters, deferrals), and refusals carry the contract's reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from vigil_notify import classified
from vigil_notify.classified import (
    EVIDENCE_INTERNED_MAX,
    UNREAD,
    LeanAlertClassified,
    LeanEvidence,
    LeanLabelScore,
    LeanLocation,
    build_validator,
    decode_classified,
    rust_version_check,
)
from vigil_notify.matching import AlertFeatures, match_one
from vigil_notify.notifier import _AlertShared
from vigil_notify.rendering import Renderer
from vigil_shared.events import (
    SCHEMA_VERSION,
    AlertClassified,
    AlertReceived,
    CapArea,
    CapInfo,
    Evidence,
    InvalidEvent,
    LabelScore,
    Location,
    parse_event,
)

from .helpers import ISTANBUL, MOSCOW, MOSCOW_ID, SPB, make_alert, make_sub

CAP = CapInfo(
    identifier="x-1", sender="s@example.org", sent=datetime(2026, 11, 25, 10, 0, tzinfo=UTC), msg_type="Update",
    references=("s@example.org,x-0,2026-11-25T09:00:00+00:00",), urgency="Immediate", severity="Extreme",
    certainty="Observed", categories=("Security",), event="Bomb threat", headline="Bomb threat at the mall",
    instruction="Stay away from the area.", expires=datetime(2026, 11, 26, tzinfo=UTC),
    areas=(CapArea(area_desc="Centre", polygons=("1,2 3,4 5,6 1,2",), geocodes={"FIPS": "1"}),),
)  # fmt: skip


def _alerts() -> list[AlertClassified]:
    plain = make_alert()
    many = make_alert(alert_id="a-2", locations=(MOSCOW, SPB, ISTANBUL, MOSCOW_ID), threats=("terrorism", "crime"),
                      cap=CAP, revision=2, revision_of="a-0", url=None, severity="Extreme")  # fmt: skip
    # evidence on every label and location, texts repeated across labels (rendering keeps five distinct)
    c = many.classification
    ev = tuple(Evidence(text=t, start=i, end=i + len(t)) for i, t in enumerate(["bomb", "mall", "bomb", "", "metro"]))
    rich = many.model_copy(
        update={
            "classification": c.model_copy(
                update={
                    "threat_types": tuple(lab.model_copy(update={"evidence": ev}) for lab in c.threat_types),
                    "targets": (LabelScore(type="hotels", confidence=0.5, evidence=(*ev[::-1], ev[0])),),
                    "locations": tuple(loc.model_copy(update={"evidence": ev[:2]}) for loc in c.locations),
                }
            ),
            "alert": many.alert.model_copy(update={"published": datetime(2026, 11, 25, tzinfo=UTC),
                                                   "language": "en", "extra": {"k": [1, {"a": None}]}}),
        }
    )  # fmt: skip
    no_threat = make_alert(alert_id="a-3", locations=(), countries=("FR",), threats=(), targets=(), is_threat=False)
    # what the model holds must survive the JSON round trip for the comparison below
    return [AlertClassified.model_validate_json(a.model_dump_json()) for a in (plain, rich, no_threat)]


@pytest.mark.parametrize("alert", _alerts(), ids=["plain", "rich", "no-threat"])
def test_notify_reads_the_same_from_the_lean_decode(alert: AlertClassified) -> None:
    body = alert.model_dump_json().encode()
    lean = decode_classified(body)
    full = parse_event(AlertClassified, body)
    assert type(lean) is LeanAlertClassified
    assert isinstance(lean, AlertClassified)
    # everything notify reads
    assert AlertFeatures.of(lean) == AlertFeatures.of(full)
    renderer = Renderer()
    for kind in ("new", "update", "cancel"):
        assert renderer.context(lean, kind=kind, reason="r", subscription_name="n") == renderer.context(
            full, kind=kind, reason="r", subscription_name="n"
        )
        one, other = (
            renderer.render(a, kind=kind, reason="r", subscription_id="s", subscription_name="n", idempotency_key="k")
            for a in (lean, full)
        )
        assert (one.title, one.text, one.markdown, one.html) == (other.title, other.text, other.markdown, other.html)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    for sub in (make_sub("all", include_non_threats=True), make_sub("ru", countries=["RU"]),
                make_sub("near", near={"lat": 55.75, "lon": 37.61, "radius_km": 50})):  # fmt: skip
        assert repr(match_one(lean, sub, now)) == repr(match_one(full, sub, now))
    assert lean.alert.alert_id == full.alert.alert_id
    assert lean.correlation_id == full.correlation_id
    assert lean.alert.cap == full.alert.cap
    # what it does not decode (UNREAD): the locations' evidence, the evidence offsets, the confidences
    for loc, full_loc in zip(lean.classification.locations, full.classification.locations, strict=True):
        assert type(loc) is LeanLocation
        assert not hasattr(loc, "evidence")
        assert not hasattr(loc, "confidence")
        assert {**loc.__dict__, "evidence": full_loc.evidence, "confidence": full_loc.confidence} == full_loc.__dict__
    full_labels = {lab.type: lab for lab in (*full.classification.threat_types, *full.classification.targets)}
    for label in (*lean.classification.threat_types, *lean.classification.targets):
        assert type(label) is LeanLabelScore
        assert not hasattr(label, "confidence")
        assert all(type(e) is LeanEvidence and e.__dict__.keys() == {"text"} for e in label.evidence)
        assert [e.text for e in label.evidence] == [e.text for e in full_labels[label.type].evidence]
    assert set(UNREAD) == {LeanEvidence, LeanLabelScore, LeanLocation}
    assert lean.occurred_at == full.occurred_at
    assert lean.alert == full.alert


@pytest.mark.parametrize("alert", _alerts(), ids=["plain", "rich", "no-threat"])
def test_serialisations_carry_the_full_event_from_the_exact_body(alert: AlertClassified) -> None:
    canonical = alert.model_dump_json()
    # a body written differently (spacing, key order) comes back exactly as written
    odd = json.dumps(dict(reversed(list(json.loads(canonical).items()))), indent=1)
    for body in (canonical.encode(), canonical, odd.encode(), odd):
        lean = decode_classified(body)
        text = body if isinstance(body, str) else body.decode()
        assert lean.model_dump_json() == text
        assert _AlertShared(lean, Renderer()).alert_json() == text  # dead letters and deferrals
        assert lean.model_dump_json(indent=2) == alert.model_dump_json(indent=2)
        assert lean.model_dump() == alert.model_dump()
        assert lean.model_dump(mode="json") == json.loads(canonical)
        assert isinstance(lean, LeanAlertClassified)
        assert lean.full() == alert


def _invalid_variants() -> list[bytes]:
    good: dict[str, Any] = json.loads(_alerts()[1].model_dump_json())

    def changed(path: str, value: Any) -> bytes:
        doc = json.loads(json.dumps(good))
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
        return json.dumps(doc).encode()

    return [
        b"not json",
        b"[]",
        b"",
        changed("schema_version", SCHEMA_VERSION + 1),
        changed("alert.schema_version", SCHEMA_VERSION + 1),
        changed("schema_version", 0),
        changed("alert.schema_version", "one"),
        changed("classification.threat_types.0.type", None),
        changed("classification.threat_types.0.evidence.0.text", 3),
        changed("classification.locations.0.name", KeyError),
        changed("classification.locations.0.latitude", "north"),
        changed("classification.severity", "Apocalyptic"),
        changed("classification.surprise", 1),
        changed("alert.text", KeyError),
        changed("alert.surprise", 1),
        changed("alert.occurred_at", "yesterday"),
        changed("occurred_at", "yesterday"),
        changed("classification.targets.0.evidence", None),
        changed("classification.targets.0.evidence.0", ["bomb", 1, 2]),
        changed("classification.targets.0.evidence.0", "bomb"),
        changed("classification.targets.0.evidence.0", None),
        changed("classification.targets.0.evidence.0.text", KeyError),
        changed("classification.threat_types.0.evidence.1.text", None),
        changed("classification.threat_types.0.evidence.1.text", ["bomb"]),
        changed("surprise", 1),
        changed("correlation_id", None),
    ]


@pytest.mark.parametrize("body", _invalid_variants())
def test_refusals_carry_the_contracts_reasons(body: bytes) -> None:
    with pytest.raises(InvalidEvent) as reference:
        parse_event(AlertClassified, body)
    with pytest.raises(InvalidEvent) as info:
        decode_classified(body)
    assert str(info.value) == str(reference.value)
    assert info.value.unsupported_version == reference.value.unsupported_version


def test_a_newer_schema_still_dead_letters_as_upgrade_this_service() -> None:
    doc = json.loads(_alerts()[0].model_dump_json())
    doc["alert"]["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(InvalidEvent) as info:
        decode_classified(json.dumps(doc).encode())
    assert info.value.unsupported_version
    assert "upgrade this service" in str(info.value)


def test_faults_only_in_what_notify_never_reads_are_accepted() -> None:
    """The documented difference: a location's evidence, the evidence offsets and the confidences are
    not decoded by notify (nor unknown keys next to them), so faults there do not dead-letter the
    alert (its serialisation is still the entry's exact JSON)."""
    doc = json.loads(_alerts()[1].model_dump_json())
    doc["classification"]["locations"][0]["evidence"] = [{"text": 1, "start": -1}]
    doc["classification"]["locations"][1]["surprise"] = 1
    doc["classification"]["threat_types"][0]["evidence"][0]["start"] = -5
    doc["classification"]["threat_types"][0]["evidence"][1]["surprise"] = 1
    doc["classification"]["threat_types"][1]["confidence"] = 1.5
    doc["classification"]["locations"][2]["confidence"] = "high"
    body = json.dumps(doc).encode()
    with pytest.raises(InvalidEvent):
        parse_event(AlertClassified, body)
    lean = decode_classified(body)
    assert lean.model_dump_json() == body.decode()
    assert (
        lean.classification.threat_types[0].evidence[0].text
        == doc["classification"]["threat_types"][0]["evidence"][0]["text"]
    )


@pytest.mark.parametrize("model", [AlertClassified, AlertReceived, LeanAlertClassified])
def test_rust_version_check_accepts_and_builds_what_the_model_does(
    model: type[AlertClassified | AlertReceived],
) -> None:
    """build_validator(rust_version_check(...)): the same objects for valid events, a refusal for
    every invalid version (the reasons are the model's own validator's job), no Python call for it."""
    fast = build_validator(rust_version_check(model.__pydantic_core_schema__))
    assert "FunctionAfter" not in repr(fast)  # the envelopes' version checks are Rust's
    assert "Prebuilt" not in repr(fast)  # built from the transformed schema, not the classes' own validators
    for alert in _alerts():
        event = alert if model is not AlertReceived else alert.alert
        data = event.model_dump_json()
        parsed, reference = fast.validate_json(data), model.model_validate_json(data)
        assert type(parsed) is model
        assert parsed == reference
        assert parsed.model_fields_set == reference.model_fields_set
        for version in (0, -1, SCHEMA_VERSION + 1, "x", None, 1.5):
            body = json.dumps({**json.loads(data), "schema_version": version})
            with pytest.raises(ValidationError):
                model.model_validate_json(body)
            with pytest.raises(ValidationError):
                fast.validate_json(body)
        for version in (SCHEMA_VERSION, "1", 1.0):  # lax int, as the model's own check takes it
            body = json.dumps({**json.loads(data), "schema_version": version})
            assert fast.validate_json(body) == model.model_validate_json(body)
    # the classes are left as they were (complete: their own validators are still used elsewhere)
    for cls in (model, AlertReceived, AlertClassified, LeanLocation, Location, Evidence):
        assert cls.__dict__["__pydantic_complete__"] is True


def test_evidence_is_interned_by_text() -> None:
    """One LeanEvidence per text, shared by every quotation of it (in one alert and across alerts),
    the object the lean model node made (its text only, the same fields set)."""
    rich = _alerts()[1]
    body = rich.model_dump_json().encode()
    one, two = decode_classified(body), decode_classified(body)
    quoted = [e for lab in (*one.classification.threat_types, *one.classification.targets) for e in lab.evidence]
    again = [e for lab in (*two.classification.threat_types, *two.classification.targets) for e in lab.evidence]
    assert len(quoted) > len({e.text for e in quoted}) > 1  # the fixture repeats texts
    assert all(a is b for a, b in zip(quoted, again, strict=True))
    by_text = {e.text: e for e in quoted}
    assert all(e is by_text[e.text] for e in quoted)
    for e in quoted:
        assert type(e) is LeanEvidence
        assert e.__dict__ == {"text": e.text}
        assert e.model_fields_set == {"text"}
        assert e == LeanEvidence.model_construct(text=e.text)
    # unknown keys and the offsets are ignored, as the lean model ignored them
    doc = json.loads(body)
    doc["classification"]["threat_types"][0]["evidence"][0] = {"surprise": 1, "text": "bomb", "start": -1}
    lean = decode_classified(json.dumps(doc).encode())
    assert lean.classification.threat_types[0].evidence[0] is by_text["bomb"]


def test_interned_evidence_is_bounded() -> None:
    cache = classified._EVIDENCE
    doc = json.loads(_alerts()[1].model_dump_json())
    texts = [f"word {i}" for i in range(EVIDENCE_INTERNED_MAX + 10)]
    for start in range(0, len(texts), 500):
        doc["classification"]["targets"][0]["evidence"] = [
            {"text": t, "start": 0, "end": 1} for t in texts[start : start + 500]
        ]
        lean = decode_classified(json.dumps(doc).encode())
        assert [e.text for e in lean.classification.targets[0].evidence] == texts[start : start + 500]
        assert len(cache) <= EVIDENCE_INTERNED_MAX
    assert texts[-1] in cache


def test_every_evidence_node_of_the_lean_validator_is_the_interning_call() -> None:
    text = repr(classified._LEAN)
    assert "LeanEvidence" not in text
    assert "Prebuilt" not in text
