from __future__ import annotations

from pathlib import Path

from vigil_classify.engine import Classifier
from vigil_classify.evaluation import PRF, evaluate, format_report, load_dataset, place_matches
from vigil_shared.events import Location


def test_dev_set_meets_targets(classifier: Classifier, fixtures_dir: Path) -> None:
    report = evaluate(load_dataset(fixtures_dir / "dev_alerts.jsonl"), classifier)
    assert report.n == 26
    assert report.threat_types.f1 >= 0.90
    assert report.targets.f1 >= 0.85
    assert report.countries.f1 >= 0.95
    assert report.places.f1 >= 0.90
    assert report.is_threat_correct / report.n >= 0.95


def test_holdout_set_is_scored(classifier: Classifier, fixtures_dir: Path) -> None:
    report = evaluate(load_dataset(fixtures_dir / "holdout_alerts.jsonl"), classifier)
    assert report.n >= 15
    # Held-out: a looser floor than dev, to catch regressions without fitting to it.
    assert report.threat_types.f1 >= 0.80
    assert report.places.f1 >= 0.80
    text = format_report(report)
    assert "threat_types" in text
    assert "places" in text


def test_prf_arithmetic() -> None:
    prf = PRF()
    prf.add({"a", "b"}, {"b", "c"})
    assert (prf.tp, prf.fp, prf.fn) == (1, 1, 1)
    assert prf.f1 == 0.5


def test_place_matching_is_tolerant(classifier: Classifier) -> None:
    gaz = classifier.gazetteer
    chatt = Location(name="Chattogram", country_code="BD", geonameid=None)
    loc = next(iter(classifier.classify("Floods in Chittagong, Bangladesh.").locations))
    assert place_matches(gaz, loc, "Chittagong", "BD")
    assert place_matches(gaz, Location(name="Kahramanmaraş", country_code="TR"), "Kahramanmaras", "TR")
    assert place_matches(gaz, Location(name="La Araucanía", country_code="CL"), "Araucania", "CL")
    assert not place_matches(gaz, chatt, "Dhaka", "BD")
    assert not place_matches(gaz, Location(name="Moscow", country_code="US"), "Moscow", "RU")
