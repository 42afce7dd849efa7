"""Score the classifier against labelled alerts in the ``LABELS.md`` format.

Micro precision / recall / F1 for threat types, targets, countries and places; accuracy for
``is_threat``, urgency and severity; a per-label table; and the worst-scored items. A predicted place
matches a labelled one with the same country code when the names agree after folding accents,
articles and "City", when one is the other plus a suffix ("Acapulco" / "Acapulco de Juárez"), or
when the gazetteer resolves the labelled name to the predicted place ("Chittagong" -> Chattogram).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil_shared.events import Classification, Location

from vigil_classify.engine import Classifier
from vigil_classify.gazetteer import Gazetteer
from vigil_classify.textnorm import normalise

_DROP = {"la", "el", "le", "al", "the", "city", "of", "region", "province", "state"}


@dataclass(slots=True)
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gold: set[Any], pred: set[Any]) -> None:
        self.tp += len(gold & pred)
        self.fp += len(pred - gold)
        self.fn += len(gold - pred)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(slots=True)
class ItemResult:
    id: str
    score: float
    problems: list[str]


@dataclass(slots=True)
class Report:
    n: int = 0
    threat_types: PRF = field(default_factory=PRF)
    targets: PRF = field(default_factory=PRF)
    countries: PRF = field(default_factory=PRF)
    places: PRF = field(default_factory=PRF)
    is_threat_correct: int = 0
    urgency_correct: int = 0
    severity_correct: int = 0
    per_label: dict[str, PRF] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)

    def as_dict(self, worst: int = 8) -> dict[str, Any]:
        n = max(self.n, 1)
        return {
            "n": self.n,
            "threat_types": self.threat_types.as_dict(),
            "targets": self.targets.as_dict(),
            "countries": self.countries.as_dict(),
            "places": self.places.as_dict(),
            "is_threat_accuracy": round(self.is_threat_correct / n, 4),
            "urgency_accuracy": round(self.urgency_correct / n, 4),
            "severity_accuracy": round(self.severity_correct / n, 4),
            "per_label": {k: v.as_dict() for k, v in sorted(self.per_label.items())},
            "worst": [
                {"id": i.id, "score": round(i.score, 3), "problems": i.problems}
                for i in sorted(self.items, key=lambda i: (i.score, i.id))[:worst]
                if i.problems
            ],
        }


def _fold(name: str) -> str:
    return " ".join(w for w in normalise(name).split() if w not in _DROP)


def place_matches(gaz: Gazetteer | None, pred: Location, gold_name: str, gold_cc: str) -> bool:
    """Does the predicted location stand for the labelled ``(name, country_code)``?"""
    if pred.country_code.upper() != gold_cc.upper():
        return False
    a, b = _fold(pred.name), _fold(gold_name)
    if a == b or a.startswith(b + " ") or b.startswith(a + " "):
        return True
    if gaz is None:
        return False
    for cand in gaz.lookup(gold_name):
        place = gaz.places[cand.place]
        if place.country_code != pred.country_code:
            continue
        if pred.geonameid is not None and place.geonameid == pred.geonameid:
            return True
        if _fold(place.name) == a:
            return True
    return False


def _labels(values: Iterable[str]) -> set[str]:
    return {v for v in values if v and v != "none"}


def score_item(report: Report, gaz: Gazetteer | None, item: dict[str, Any], result: Classification) -> None:
    """Add one labelled item and its classification to ``report``."""
    labels = item["labels"]
    report.n += 1
    problems: list[str] = []
    item_f1: list[float] = []

    def compare(kind: str, prf: PRF, gold: set[str], pred: set[str]) -> None:
        prf.add(gold, pred)
        one = PRF()
        one.add(gold, pred)
        item_f1.append(one.f1 if gold or pred else 1.0)
        for lab in gold | pred:
            report.per_label.setdefault(f"{kind}:{lab}", PRF()).add(gold & {lab}, pred & {lab})
        if gold != pred:
            miss, extra = sorted(gold - pred), sorted(pred - gold)
            problems.append(f"{kind}: missed {miss} extra {extra}")

    compare(
        "threat",
        report.threat_types,
        _labels(labels.get("threat_types", ())),
        {t.type for t in result.threat_types},
    )
    compare("target", report.targets, _labels(labels.get("targets", ())), {t.type for t in result.targets})
    gold_locs = [(str(g["name"]), str(g["country_code"]).upper()) for g in labels.get("locations", ())]
    compare("country", report.countries, {cc for _, cc in gold_locs}, set(result.countries))

    unmatched = list(result.locations)
    tp = 0
    missed: list[str] = []
    for name, cc in gold_locs:
        hit = next((p for p in unmatched if place_matches(gaz, p, name, cc)), None)
        if hit is None:
            missed.append(f"{name}/{cc}")
        else:
            unmatched.remove(hit)
            tp += 1
    report.places.tp += tp
    report.places.fn += len(missed)
    report.places.fp += len(unmatched)
    one = PRF(tp, len(unmatched), len(missed))
    item_f1.append(one.f1 if gold_locs or unmatched else 1.0)
    if missed or unmatched:
        problems.append(f"places: missed {missed} extra {[f'{p.name}/{p.country_code}' for p in unmatched]}")

    gold_threat = bool(labels.get("is_threat", bool(_labels(labels.get("threat_types", ())))))
    ok = gold_threat == result.is_threat
    report.is_threat_correct += ok
    if not ok:
        problems.append(f"is_threat: gold {gold_threat} got {result.is_threat}")
    for attr in ("urgency", "severity"):
        gold_v = labels.get(attr)
        got = getattr(result, attr)
        if gold_v == got:
            setattr(report, f"{attr}_correct", getattr(report, f"{attr}_correct") + 1)
        elif gold_v is not None:
            problems.append(f"{attr}: gold {gold_v} got {got}")
    score = sum(item_f1) / len(item_f1) + (0.0 if ok else -1.0)
    report.items.append(ItemResult(str(item.get("id", "")), score, problems))


def load_dataset(path: str | Path) -> list[dict[str, Any]]:
    """JSON lines with ``id``, ``title``, ``text``, optional ``issuer`` and ``labels``."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            items.append(json.loads(line))
    return items


def evaluate(items: Iterable[dict[str, Any]], classifier: Classifier | None = None) -> Report:
    """Classify every item and score it."""
    clf = classifier or Classifier()
    report = Report()
    for item in items:
        result = clf.classify(
            str(item.get("text", "")),
            title=str(item.get("title", "")),
            issuer=item.get("issuer"),
            alert_id=str(item.get("id", "")),
        )
        score_item(report, clf.gazetteer, item, result)
    return report


def format_report(report: Report, worst: int = 8) -> str:
    """A plain-text table of the scores, the per-label figures and the worst items."""
    d = report.as_dict(worst)
    lines = [
        f"items: {d['n']}",
        "",
        f"{'metric':14} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}",
    ]
    for key in ("threat_types", "targets", "countries", "places"):
        m = d[key]
        lines.append(
            f"{key:14} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
            f"{m['tp']:4d} {m['fp']:4d} {m['fn']:4d}"
        )
    lines += [
        "",
        f"is_threat accuracy: {d['is_threat_accuracy']:.3f}",
        f"urgency accuracy:   {d['urgency_accuracy']:.3f}",
        f"severity accuracy:  {d['severity_accuracy']:.3f}",
        "",
        f"{'label':36} {'P':>6} {'R':>6} {'F1':>6} {'support':>7}",
    ]
    for label, m in d["per_label"].items():
        lines.append(
            f"{label:36} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['tp'] + m['fn']:7d}"
        )
    if d["worst"]:
        lines += ["", "worst items:"]
        for w in d["worst"]:
            lines.append(f"  {w['id']} (score {w['score']}):")
            lines += [f"    - {p}" for p in w["problems"]]
    return "\n".join(lines)
