"""Golden outputs: performance work must not change a single classification.

Classifies the dev and holdout fixtures plus 2,000 generated alerts and compares a sha256 of the
JSON dump of all results with the digest recorded before the speed work. If a deliberate change to
the taxonomy or gazetteer changes outputs, re-record the digest (print ``_digest(classifier)``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier

_FIXTURES = ("dev", "holdout", "holdout2", "holdout3")
GOLDEN = "49f5df0ef3b23dc89c41ac42eb8edb2c8280c65386f725de1bd8262cccca6948"


def _results(clf: Classifier, fixtures: Path) -> list[dict[str, object]]:
    out = []
    for name in _FIXTURES:
        for line in (fixtures / f"{name}_alerts.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            res = clf.classify(
                str(item.get("text", "")),
                title=str(item.get("title", "")),
                issuer=item.get("issuer"),
                alert_id=str(item.get("id", "")),
            )
            out.append(res.model_dump(mode="json"))
    for i, (title, text) in enumerate(make_alerts(2000, seed=11)):
        issuer = "U.S. Embassy Moscow" if i % 5 == 0 else None
        out.append(clf.classify(text, title=title, issuer=issuer, alert_id=f"gen-{i}").model_dump(mode="json"))
    return out


def _digest(clf: Classifier, fixtures: Path) -> str:
    blob = json.dumps(_results(clf, fixtures), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def test_outputs_identical_to_golden(classifier: Classifier, fixtures_dir: Path) -> None:
    assert _digest(classifier, fixtures_dir) == GOLDEN


def test_results_round_trip_through_validation(classifier: Classifier, fixtures_dir: Path) -> None:
    """Whatever construction path the engine uses, its results equal validated models."""
    from vigil_shared.events import Classification

    for title, text in make_alerts(300, seed=5):
        res = classifier.classify(text, title=title)
        again = Classification.model_validate(res.model_dump())
        assert again == res
        assert again.model_dump_json() == res.model_dump_json()
