"""The pure classification entry point: text in, :class:`Classification` out.

Deterministic and offline: the same inputs always give the same output. Evidence offsets index into
``classified_text(title, text)``.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict, cast

import orjson
from vigil_shared.events import (
    Certainty,
    Classification,
    Severity,
    Urgency,
    classified_text,
)

from vigil_classify import gazetteer as gazetteer_mod
from vigil_classify import geoparse, severity
from vigil_classify.geoparse import REGION_KEYS, EvidencePayload, LocationPayload
from vigil_classify.taxonomy import NEGATOR_KEYS, NEGATOR_MARK, REGION_MARK, LabelEvidence, Taxonomy, read, read_hits
from vigil_classify.taxonomy_data import TAXONOMY_VERSION
from vigil_classify.textnorm import AutomatonHit, normalise, padded

CLASSIFIER_VERSION: Final = f"rules-1.0+tax{TAXONOMY_VERSION}+gaz{gazetteer_mod.GAZETTEER_VERSION}"

_THRESHOLD: Final = 1.0

# The gazetteer's automaton (loaded with the taxonomy's phrases) yields per hit the end offset and
# the key's value ``(length, place candidates, label entries, severity-cue entries)``
# (:data:`~vigil_classify.textnorm.AutomatonHit`).


class LabelPayload(TypedDict):
    """:class:`vigil_shared.events.LabelScore` as JSON data."""

    type: str
    confidence: float
    evidence: list[EvidencePayload]


class ClassificationPayload(TypedDict):
    """:class:`vigil_shared.events.Classification` as JSON data, keys in the model's field order."""

    id: str
    is_threat: bool
    threat_types: list[LabelPayload]
    targets: list[LabelPayload]
    locations: list[LocationPayload]
    countries: list[str]
    urgency: str
    severity: str
    certainty: str
    classifier_version: str


def _confidence(score: float, routine: int) -> float:
    conf = 0.55 + 0.2 * score - 0.1 * min(routine, 3)
    return round(max(0.05, min(0.99, conf)), 3)


_CONF: Final[tuple[dict[float, float], ...]] = ({}, {}, {}, {})
"""Memo of :func:`_confidence` by ``min(routine, 3)`` (all it depends on) and score (``round`` is the
dear part; scores are sums of a few weights): a float key instead of a (score, routine) tuple."""


def _label_confidence(score: float, routine: int) -> float:
    """:func:`_confidence`, memoised in :data:`_CONF` (a routine below 0 is not memoised)."""
    if routine < 0:
        return _confidence(score, routine)
    memo = _CONF[routine if routine < 3 else 3]
    conf = memo.get(score)
    if conf is None:
        if len(memo) > 4096:
            memo.clear()
        conf = memo[score] = _confidence(score, routine)
    return conf


def _scores(text: str, table: dict[str, LabelEvidence], routine: int) -> list[LabelPayload]:
    """Labels over the threshold as plain dicts in :class:`LabelScore`'s shape, best first."""
    # (a variable-length tuple type: the compiled build keeps the tuple objects as they are, where a
    # fixed-length one would unpack each and pack it into a new tuple when stored)
    out: list[tuple[Any, ...]] = []
    for label, ev in table.items():
        score = ev.score
        if score < _THRESHOLD:
            continue
        conf = _label_confidence(score, routine)
        spans = ev.spans
        n = len(spans)
        if n == 1:
            evidence: list[EvidencePayload] = [_span_evidence(text, spans[0])]
        elif n == 2:
            evidence = [_span_evidence(text, spans[0]), _span_evidence(text, spans[1])]
        else:
            # (read keeps at most three spans per label)
            evidence = [_span_evidence(text, span) for span in spans]
        out.append((-conf, label, {"type": label, "confidence": conf, "evidence": evidence}))
    if len(out) > 1:
        _sort_scored(out)
    return [item[2] for item in out]


def _span_evidence(text: str, span: tuple[Any, ...]) -> EvidencePayload:
    """The evidence of a span ``(start, end)``: its two int objects go into the payload as they are
    (a variable-length tuple type: the compiled build does not unpack them and box them again)."""
    s: int = span[0]
    e: int = span[1]
    return {"text": text[s:e], "start": span[0], "end": span[1]}


def _scores_json(text: str, table: dict[str, LabelEvidence], routine: int) -> tuple[list[str], str]:
    """The labels of :func:`_scores` (best first) and the JSON text orjson writes for its list of dicts:
    ``[{"type":..,"confidence":..,"evidence":[{"text":..,"start":..,"end":..},..]},..]``, written
    from each string's and float's own orjson text (memoised: labels, evidence words and confidences
    repeat) and each int's decimal digits, without a dict per label and per span."""
    out: list[tuple[Any, ...]] = []
    for label, ev in table.items():
        score = ev.score
        if score < _THRESHOLD:
            continue
        conf = _label_confidence(score, routine)
        out.append((-conf, label, conf, ev.spans))
    if not out:
        return [], "[]"
    if len(out) > 1:
        _sort_scored(out)
    labels: list[str] = []
    # one join of the pieces (a concatenation per piece would copy the text so far each time)
    parts: list[str] = ["["]
    for item in out:
        label = item[1]
        labels.append(label)
        if len(parts) > 1:
            parts.append(",")
        parts.append(_label_head(label))  # {"type":<label>,"confidence":
        parts.append(_confidence_head(item[2]))  # <confidence>,"evidence":[
        spans: list[tuple[Any, ...]] = item[3]
        first = True
        for span in spans:
            start: int = span[0]
            end: int = span[1]
            if not first:
                parts.append(",")
            first = False
            parts.append(_evidence_head(text[start:end]))  # {"text":<text>,"start":
            if end < _SMALL_OFFSETS:  # (start < end)
                parts.append(_START_TEXT[start])
                parts.append(_END_TEXT[end])
            else:
                parts.append(str(start))
                parts.append(',"end":' + str(end) + "}")
        parts.append("]}")
    parts.append("]")
    return labels, "".join(parts)


_SMALL_OFFSETS: Final = 4096
_START_TEXT: Final[tuple[str, ...]] = tuple([str(i) for i in range(_SMALL_OFFSETS)])
"""An evidence start's JSON text, by offset (no int-to-text conversion per span)."""
_END_TEXT: Final[tuple[str, ...]] = tuple([',"end":' + str(i) + "}" for i in range(_SMALL_OFFSETS)])
"""An evidence end's JSON text and the span's closing brace, by offset."""
_EVIDENCE_HEAD: Final[dict[str, str]] = {}
"""Memo of :func:`_evidence_head` (evidence words: a few thousand distinct ones)."""
_LABEL_HEAD: Final[dict[str, str]] = {}
_CONFIDENCE_HEAD: Final[dict[float, str]] = {}


def _quoted_between(memo: dict[str, str], limit: int, before: str, value: str, after: str) -> str:
    """``before`` + ``value`` as orjson writes a string (its escapes; a lone surrogate refused) +
    ``after``, memoised in ``memo`` (emptied when it holds ``limit`` entries)."""
    got = memo.get(value)
    if got is None:
        got = before + orjson.dumps(value).decode() + after
        if len(memo) >= limit:
            memo.clear()
        memo[value] = got
    return got


def _evidence_head(text: str) -> str:
    """``{"text":<text>,"start":`` (evidence words: a few thousand distinct ones)."""
    return _quoted_between(_EVIDENCE_HEAD, 16384, '{"text":', text, ',"start":')


def _label_head(label: str) -> str:
    """``{"type":<label>,"confidence":`` (the taxonomy's few labels)."""
    return _quoted_between(_LABEL_HEAD, 1024, '{"type":', label, ',"confidence":')


def _confidence_head(value: float) -> str:
    """``<confidence>,"evidence":[``, the float as orjson writes it (a confidence: positive, so 0.0 and
    -0.0, equal as keys, never share an entry; at most a thousand, rounded to three decimals)."""
    got = _CONFIDENCE_HEAD.get(value)
    if got is None:
        got = orjson.dumps(value).decode() + ',"evidence":['
        if len(_CONFIDENCE_HEAD) >= 4096:
            _CONFIDENCE_HEAD.clear()
        if value > 0.0:
            _CONFIDENCE_HEAD[value] = got
    return got


def _sort_scored(out: list[tuple[Any, ...]]) -> None:
    """``out.sort()``, in place, for a few ``(-confidence, label, payload)`` with unique labels (so the
    payloads are never compared): an insertion sort on the float and the label, where ``list.sort``
    compares the tuples through the generic rich comparison."""
    for i in range(1, len(out)):
        cur = out[i]
        key: float = cur[0]
        label: str = cur[1]
        j = i - 1
        while j >= 0:
            other = out[j]
            okey: float = other[0]
            if okey < key:
                break
            if okey == key:
                olabel: str = other[1]
                if olabel < label:
                    break
            out[j + 1] = other
            j -= 1
        out[j + 1] = cur


class Classifier:
    """Holds the loaded gazetteer and taxonomy; :meth:`classify` is cheap and thread-safe."""

    version = CLASSIFIER_VERSION

    def __init__(self, gaz: gazetteer_mod.Gazetteer | None = None, tax: Taxonomy | None = None) -> None:
        self.taxonomy = tax if tax is not None else Taxonomy()
        # The gazetteer's automaton also carries the taxonomy's phrases: one pass over each text
        # finds places and cues (a second walk of an automaton is a good part of a classification).
        self.gazetteer = gaz if gaz is not None else gazetteer_mod.load(extra=self.taxonomy.entries)
        self._one_pass = self.gazetteer.extra_digest == gazetteer_mod.extra_digest(self.taxonomy.entries)
        # Every negator's first word is a key whose label entries are one shared NEGATOR_MARK (as the
        # taxonomy makes them): the hits with that object are then all of theirs (read_hits); the
        # same for the region words (REGION_MARK, geoparse's region cue).
        self._neg_mark = self._mark(NEGATOR_KEYS, NEGATOR_MARK)
        self._region_mark = self._mark(REGION_KEYS, REGION_MARK)
        # textnorm's table for non-ASCII text (~10k code points, ~12M instructions) is made now, at
        # start-up, instead of while the first non-ASCII alert waits
        normalise("\u00e9")

    def _mark(self, keys: tuple[str, ...], mark: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The automaton's one object for ``mark`` if each of ``keys`` carries it, else ``None``."""
        auto = self.gazetteer.automaton
        if not self._one_pass or keys[0] not in auto:
            return None
        found: tuple[Any, ...] | None = auto.get(keys[0])[2]
        if found != mark or not all(auto.get(k, (0, 0, None))[2] is found for k in keys):
            return None
        return found

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
        """The validated :class:`Classification` of one alert (:meth:`classify_payload`, validated)."""
        # One validation of the whole nested result (in pydantic-core) instead of one model per
        # evidence span, label and place.
        return Classification.model_validate(
            self.classify_payload(
                text,
                title=title,
                issuer=issuer,
                alert_id=alert_id,
                cap_urgency=cap_urgency,
                cap_severity=cap_severity,
                cap_certainty=cap_certainty,
            )
        )

    def classify_payload(
        self,
        text: str,
        *,
        title: str = "",
        issuer: str | None = None,
        alert_id: str = "",
        cap_urgency: Urgency | None = None,
        cap_severity: Severity | None = None,
        cap_certainty: Certainty | None = None,
    ) -> ClassificationPayload:
        """:meth:`classify` without the pydantic validation: the result as plain JSON data.

        The payload equals ``Classification.model_validate(payload).model_dump(mode="json")`` (same
        keys in the same order, lists for tuples, same values and types; tested on the golden
        corpus), so it can be serialised as it is. Validating ~27 nested frozen models costs about a
        fifth of a classification; a consumer that validates at its edge need not pay it here too.
        The payload is fresh for each call (no object in it is shared with another result).
        """
        return cast(
            ClassificationPayload,
            self._payload(text, title, issuer, alert_id, cap_urgency, cap_severity, cap_certainty, False),
        )

    def _payload(
        self,
        text: str,
        title: str,
        issuer: str | None,
        alert_id: str,
        cap_urgency: Urgency | None,
        cap_severity: Severity | None,
        cap_certainty: Certainty | None,
        fragments: bool,
    ) -> dict[str, Any]:
        """:meth:`classify_payload`; ``fragments``: its ``threat_types`` and ``targets`` as their JSON text
        in ``orjson.Fragment`` objects (what orjson writes for the lists of dicts, :func:`_scores_json`),
        for the service's entry writer, which only hands the payload to orjson."""
        full = classified_text(title, text)
        norm = padded(full)
        if self._one_pass:
            # One pass over the hits splits them by table (what find_location_data and read_found
            # would each pick out of them with a comprehension of their own).
            # The hits are kept as the automaton made them (no tuple, and no int object for the start
            # and length, made per hit): geoparse and taxonomy read them in that shape.
            place_hits: list[AutomatonHit] = []
            label_hits: list[AutomatonHit] = []
            cue_hits: list[AutomatonHit] = []
            # where the negators' first words and the region words start (no rule reads their hits)
            negs: list[int] = []
            regions: list[int] = []
            mark = self._neg_mark
            rmark = self._region_mark
            for hit in self.gazetteer.automaton.iter(norm):
                # The automaton is untyped: a plain-tuple type keeps the hit object itself while the
                # compiled build reads its value by index (one type check each).
                value: AutomatonHit = cast(AutomatonHit, hit)[1]
                if value[1] is not None:
                    place_hits.append(hit)
                labels: tuple[Any, ...] | None = value[2]
                if labels is not None:
                    if labels is mark:
                        n: int = value[0]
                        end: int = cast(AutomatonHit, hit)[0]
                        negs.append(end - n + 1)
                    elif labels is rmark:
                        n = value[0]
                        end = cast(AutomatonHit, hit)[0]
                        regions.append(end - n + 1)
                    else:
                        label_hits.append(hit)
                if value[3] is not None:
                    cue_hits.append(hit)
            locations, countries = geoparse.location_data_from_hits(
                self.gazetteer, full, place_hits, issuer, regions if rmark is not None else None
            )
            reading = read_hits(full, label_hits, cue_hits, norm, negs if mark is not None else None)
        else:
            locations, countries = geoparse.find_location_data(self.gazetteer, full, norm, issuer)
            reading = read(full, self.taxonomy.hits(norm))
        if fragments:
            threat_labels, threats_json = _scores_json(full, reading.threats, reading.routine)
            if threat_labels:
                targets_json = _scores_json(full, reading.targets, 0)[1]
                urg, sev, cert = severity.assess(
                    threat_labels,
                    reading.cues,
                    full,
                    cap_urgency=cap_urgency,
                    cap_severity=cap_severity,
                    cap_certainty=cap_certainty,
                    norm=norm,
                )
            else:
                targets_json = "[]"
                urg = cap_urgency or "Unknown"
                sev = cap_severity or "Unknown"
                cert = cap_certainty or "Unknown"
            return {
                "id": alert_id,
                "is_threat": bool(threat_labels),
                "threat_types": orjson.Fragment(threats_json),
                "targets": orjson.Fragment(targets_json),
                "locations": locations,
                "countries": countries,
                "urgency": urg,
                "severity": sev,
                "certainty": cert,
                "classifier_version": CLASSIFIER_VERSION,
            }
        threats = _scores(full, reading.threats, reading.routine)
        if threats:
            targets = _scores(full, reading.targets, 0)
            urg, sev, cert = severity.assess(
                [t["type"] for t in threats],
                reading.cues,
                full,
                cap_urgency=cap_urgency,
                cap_severity=cap_severity,
                cap_certainty=cap_certainty,
                norm=norm,
            )
        else:
            targets = []
            # What severity.assess says for no threat (every rule's first case), CAP values winning.
            urg = cap_urgency or "Unknown"
            sev = cap_severity or "Unknown"
            cert = cap_certainty or "Unknown"
        return {
            "id": alert_id,
            "is_threat": bool(threats),
            "threat_types": threats,
            "targets": targets,
            "locations": locations,
            "countries": countries,
            "urgency": urg,
            "severity": sev,
            "certainty": cert,
            "classifier_version": CLASSIFIER_VERSION,
        }


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
