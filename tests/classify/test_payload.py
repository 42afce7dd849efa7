"""``Classifier.classify_payload`` is ``classify`` without the validation: the same result as JSON data.

The service publishes the payload without validating it per entry, so it must be exactly the JSON
form of the validated model (same keys, order, values and types) on every input, and the published
JSON must be byte-identical to what the validated event would give.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier
from vigil_shared.events import AlertClassified, AlertReceived, Classification

_FIXTURES = ("dev", "holdout", "holdout2", "holdout3")


def _inputs(fixtures: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in _FIXTURES:
        for line in (fixtures / f"{name}_alerts.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out.append(
                    {
                        "text": str(item.get("text", "")),
                        "title": str(item.get("title", "")),
                        "issuer": item.get("issuer"),
                        "alert_id": str(item.get("id", "")),
                    }
                )
    for i, (title, text) in enumerate(make_alerts(1000, seed=13)):
        out.append(
            {
                "text": text,
                "title": title,
                "issuer": "U.S. Embassy Moscow" if i % 5 == 0 else None,
                "alert_id": f"gen-{i}",
            }
        )
    out.append({"text": "Protests in Paris.", "title": "", "issuer": None, "alert_id": "cap"})
    return out


def _exact(a: object, b: object) -> bool:
    """Equal with the same types all the way down (``1 == 1.0 == True`` would hide a difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(_exact(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_exact(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_payload_is_the_json_form_of_the_validated_result(classifier: Classifier, fixtures_dir: Path) -> None:
    for kwargs in _inputs(fixtures_dir):
        payload = classifier.classify_payload(**kwargs)
        model = classifier.classify(**kwargs)
        assert _exact(dict(payload), model.model_dump(mode="json")), kwargs["alert_id"]
        assert Classification.model_validate(payload) == model


def test_cap_values_win_in_the_payload(classifier: Classifier) -> None:
    for text in ("Protests in Paris turned violent.", "The Embassy is closed on Monday."):
        payload = classifier.classify_payload(
            text, cap_urgency="Future", cap_severity="Minor", cap_certainty="Possible"
        )
        model = classifier.classify(text, cap_urgency="Future", cap_severity="Minor", cap_certainty="Possible")
        assert _exact(dict(payload), model.model_dump(mode="json"))
        assert (payload["urgency"], payload["severity"], payload["certainty"]) == ("Future", "Minor", "Possible")


def test_payloads_share_no_mutable_object(classifier: Classifier) -> None:
    (title, text), = make_alerts(1, seed=3)
    one = classifier.classify_payload(text, title=title)
    two = classifier.classify_payload(text, title=title)
    assert one == two

    def ids(x: object) -> set[int]:
        if isinstance(x, dict):
            return {id(x)} | {i for v in x.values() for i in ids(v)}
        if isinstance(x, list):
            return {id(x)} | {i for v in x for i in ids(v)}
        return set()

    assert not ids(one) & ids(two)


class _ClassifiedPayload(AlertClassified):
    """How the service can publish a payload without validating its ~27 nested models: the same
    event with ``classification`` typed as JSON data (``dict[str, Any]`` validates only the top
    level). The consumers validate ``AlertClassified`` at their edge."""

    classification: dict[str, Any]  # type: ignore[assignment]


def test_published_json_is_byte_identical(classifier: Classifier, fixtures_dir: Path) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for kwargs in _inputs(fixtures_dir)[::7]:
        alert = AlertReceived(
            correlation_id="c-1",
            producer="ingest",
            source_kind="text",
            source_name="test",
            alert_id=kwargs["alert_id"] or "a",
            title=kwargs["title"],
            text=kwargs["text"] or "x",
            issuer=kwargs["issuer"],
        )
        common = {"event_id": "e-1", "occurred_at": when, "correlation_id": "c-1", "producer": "classify"}
        validated = AlertClassified(**common, alert=alert, classification=classifier.classify(**kwargs))
        fast = _ClassifiedPayload(**common, alert=alert, classification=classifier.classify_payload(**kwargs))
        assert fast.event_type == validated.event_type
        assert fast.model_dump_json() == validated.model_dump_json()
        assert AlertClassified.model_validate_json(fast.model_dump_json()) == validated
