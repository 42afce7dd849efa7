"""The pure classification entry point: text in, :class:`Classification` out.

Deterministic and offline: the same inputs always give the same output. Evidence offsets index into
``classified_text(title, text)``.
"""

from __future__ import annotations

from typing import Any

from vigil_shared.events import (
    Certainty,
    Classification,
    Severity,
    Urgency,
    classified_text,
)

from vigil_classify import gazetteer as gazetteer_mod
from vigil_classify import geoparse, severity
from vigil_classify.taxonomy import LabelEvidence, Taxonomy, read
from vigil_classify.taxonomy_data import TAXONOMY_VERSION
from vigil_classify.textnorm import padded

CLASSIFIER_VERSION = f"rules-1.0+tax{TAXONOMY_VERSION}+gaz{gazetteer_mod.GAZETTEER_VERSION}"

_THRESHOLD = 1.0


def _confidence(score: float, routine: int) -> float:
    conf = 0.55 + 0.2 * score - 0.1 * min(routine, 3)
    return round(max(0.05, min(0.99, conf)), 3)


_CONF: dict[tuple[float, int], float] = {}
"""Memo of :func:`_confidence` (``round`` is the dear part; scores are sums of a few weights)."""


def _scores(text: str, table: dict[str, LabelEvidence], routine: int) -> list[dict[str, Any]]:
    """Labels over the threshold as plain dicts in :class:`LabelScore`'s shape, best first."""
    out = []
    for label, ev in table.items():
        score = ev.score
        if score < _THRESHOLD:
            continue
        conf = _CONF.get((score, routine))
        if conf is None:
            if len(_CONF) > 4096:
                _CONF.clear()
            conf = _CONF[(score, routine)] = _confidence(score, routine)
        out.append((-conf, label, [{"text": text[s:e], "start": s, "end": e} for s, e in ev.spans]))
    # Labels are unique, so the (confidence, label) order never compares the evidence lists.
    out.sort()
    return [{"type": label, "confidence": -neg, "evidence": evidence} for neg, label, evidence in out]


class Classifier:
    """Holds the loaded gazetteer and taxonomy; :meth:`classify` is cheap and thread-safe."""

    version = CLASSIFIER_VERSION

    def __init__(self, gaz: gazetteer_mod.Gazetteer | None = None, tax: Taxonomy | None = None) -> None:
        self.gazetteer = gaz if gaz is not None else gazetteer_mod.load()
        self.taxonomy = tax if tax is not None else Taxonomy()

    def classify(
        self,
        text: str,
        *,
        title: str = "",
        issuer: str | None = None,
        alert_id: str = "",
        cap_urgency: Urgency | None = None,
        cap_severity: Severity | None = None,
        cap_certainty: Certainty | None = None,
    ) -> Classification:
        full = classified_text(title, text)
        norm = padded(full)
        locations, countries = geoparse.find_location_data(self.gazetteer, full, norm, issuer)
        reading = read(full, self.taxonomy.hits(norm))
        threats = _scores(full, reading.threats, reading.routine)
        threat_names = [t["type"] for t in threats]
        is_threat = bool(threats)
        targets = _scores(full, reading.targets, 0) if is_threat else []
        urg, sev, cert = severity.assess(
            threat_names,
            reading.cues,
            full,
            cap_urgency=cap_urgency,
            cap_severity=cap_severity,
            cap_certainty=cap_certainty,
        )
        # One validation of the whole nested result (in pydantic-core) instead of one model per
        # evidence span, label and place.
        return Classification.model_validate(
            {
                "id": alert_id,
                "is_threat": is_threat,
                "threat_types": threats,
                "targets": targets,
                "locations": locations,
                "countries": countries,
                "urgency": urg,
                "severity": sev,
                "certainty": cert,
                "classifier_version": CLASSIFIER_VERSION,
            }
        )


_DEFAULT: Classifier | None = None


def default_classifier() -> Classifier:
    """The process-wide classifier (built on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Classifier()
    return _DEFAULT


def classify(
    text: str,
    *,
    title: str = "",
    issuer: str | None = None,
    alert_id: str = "",
    cap_urgency: Urgency | None = None,
    cap_severity: Severity | None = None,
    cap_certainty: Certainty | None = None,
) -> Classification:
    """Classify one alert with the process-wide :class:`Classifier`."""
    return default_classifier().classify(
        text,
        title=title,
        issuer=issuer,
        alert_id=alert_id,
        cap_urgency=cap_urgency,
        cap_severity=cap_severity,
        cap_certainty=cap_certainty,
    )
