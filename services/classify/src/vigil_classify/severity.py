"""CAP urgency, severity and certainty from cue words, with documented rules.

Source-supplied CAP values always win: :func:`assess` only fills what the source did not say.

Urgency (first rule that applies):

1. not a threat -> ``Unknown``;
2. *Past* cues ("no longer", "has ended", "lifted", "foiled", "reopened", "all clear") at least as
   many as *Immediate* cues -> ``Past``;
3. any *Immediate* cue ("imminent", "immediately", "this morning", "overnight", "struck", "have been
   fired", "shelter in place", "ordered departure", "casualties", "has reached") -> ``Immediate``;
4. a *hedge* ("no specific threat", "no credible threat") -> ``Future``;
5. an *ongoing* cue (present perfect or progressive of an effect: "has disrupted", "have spread",
   "have blocked", "is affecting", "overwhelmed", or reported deaths) and no *Expected* or *Future*
   cue -> ``Immediate`` (with a forecast, "flights have been cancelled" is preparation, not onset);
6. any *Future* cue ("next week", "within days or weeks", "in the coming months") and no *Expected*
   horizon cue ("within 36 hours", "tomorrow", "coming days", "coming weeks") -> ``Future``;
7. a threat whose only types are ``cyber`` (ongoing, timeless scams) -> ``Unknown``;
8. otherwise ``Expected``.

Severity:

1. not a threat -> ``Unknown``;
2. base = the highest base of the threat types: terrorism, armed conflict, kidnapping -> Severe;
   natural disaster -> Severe; civil unrest, health, non-petty crime -> Moderate; petty crime only
   (pickpocketing, theft, scams), transport disruption, cyber -> Minor;
3. deaths ("killed", "dead", "fatalities") raise to at least Severe;
4. *Extreme* cues ("ordered departure", "should depart", "large-scale", "super typhoon", "collapsed",
   "mass casualties") raise to Extreme; *grave* cues ("destructive", "widespread", "shelter in place")
   raise to at least Severe, and to Extreme when two or more occur;
5. an earthquake magnitude sets natural-disaster severity: <5 Minor, <6 Moderate, <7 Severe, else
   Extreme;
6. ``Past`` or ``Future`` urgency lowers by one level (never below Minor); ``Past`` with an all-clear
   cue ("no further action", "resume normal", "has eased") -> Minor.

Certainty: not a threat -> ``Unknown``; ``Past``/``Immediate`` with no hedge -> ``Observed``;
"possible"/"may"/"could" outnumbering "likely"/"specific"/"credible"/"expected" -> ``Possible``;
"unlikely" -> ``Unlikely``; otherwise ``Likely``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Final

from vigil_shared.events import SEVERITY_RANK, Certainty, Severity, Urgency

CUES: dict[str, tuple[str, ...]] = {
    "urg:Past": (
        "no longer",
        "has ended",
        "have ended",
        "had ended",
        "lifted",
        "has been lifted",
        "foiled",
        "foil",
        "reopened",
        "have reopened",
        "has reopened",
        "all clear",
        "returned to normal",
        "has subsided",
        "have subsided",
        "has passed",
        "is over",
        "has eased",
        "have eased",
    ),
    "urg:Now": (
        "has disrupted",
        "have disrupted",
        "has spread",
        "have spread",
        "is spreading",
        "are spreading",
        "has blocked",
        "have blocked",
        "have been blocked",
        "has hit",
        "have hit",
        "is affecting",
        "are affecting",
        "overwhelmed",
        "are being cancelled",
        "are being canceled",
    ),
    "urg:Hedge": (
        "no specific threat",
        "no specific threats",
        "no credible threat",
        "no credible threats",
        "no specific information",
        "no known threat",
    ),
    "sev:AllClear": (
        "no further action",
        "resume normal",
        "returned to normal",
        "back to normal",
        "has eased",
        "have eased",
    ),
    "urg:Immediate": (
        "imminent",
        "immediately",
        "at any time",
        "this morning",
        "early this morning",
        "this afternoon",
        "this evening",
        "tonight",
        "overnight",
        "right now",
        "currently",
        "ongoing",
        "under way",
        "underway",
        "shelter in place",
        "take cover",
        "ordered departure",
        "ordered the departure",
        "struck",
        "have been fired",
        "has been reported",
        "have been reported",
        "has reached",
        "have reached",
        "casualties",
        "are taking place",
        "is taking place",
        "erupted",
        "in progress",
        "evacuate now",
        "heavy gunfire",
        "have been launched",
        "is under attack",
    ),
    "urg:Future": (
        "next week",
        "next month",
        "next year",
        "within days or weeks",
        "coming months",
        "later this month",
        "later this year",
        "scheduled for",
        "planned for",
    ),
    "urg:Expected": (
        "prepare to shelter in place",
        "within 24 hours",
        "within 36 hours",
        "within 48 hours",
        "within 72 hours",
        "tomorrow",
        "coming days",
        "in the coming weeks",
        "coming weeks",
        "this weekend",
        "expected",
        "forecast",
        "upcoming",
    ),
    "sev:Extreme": (
        "ordered departure",
        "ordered the departure",
        "should depart",
        "depart immediately",
        "leave the country",
        "large scale",
        "super typhoon",
        "catastrophic",
        "collapsed",
        "mass casualties",
        "category 5",
        "category 4",
        "major earthquake",
        "state of war",
    ),
    "sev:Severe": ("killed", "dead", "deaths", "fatalities", "fatal", "people died"),
    "sev:Grave": ("destructive", "widespread", "shelter in place"),
    "sev:petty": (
        "pickpocketing",
        "pickpocket",
        "pickpockets",
        "theft",
        "thefts",
        "thief",
        "thieves",
        "bag snatching",
        "snatched",
        "scam",
        "scams",
        "scammer",
        "scammers",
        "fraud",
        "fraudulent",
        "petty crime",
        "stolen",
        "steal",
        "steals",
        "phishing",
    ),
    "cert:Possible": ("possible", "possibly", "may", "could", "might", "potential", "potentially"),
    "cert:Likely": (
        "likely",
        "specific threats",
        "specific threat",
        "credible",
        "expected",
        "forecast",
        "will",
    ),
    "cert:Unlikely": ("unlikely",),
    "sev:magnitude": ("magnitude",),
}
"""Cue phrases (matched by the taxonomy automaton, category ``urg``/``sev``/``cert``)."""

_BASE: dict[str, str] = {
    "terrorism": "Severe",
    "armed_conflict": "Severe",
    "kidnapping": "Severe",
    "natural_disaster": "Severe",
    "civil_unrest": "Moderate",
    "health": "Moderate",
    "crime": "Moderate",
    "transport_disruption": "Minor",
    "cyber": "Minor",
}
_BY_RANK: Final = {v: k for k, v in SEVERITY_RANK.items() if k != "Unknown"}
_BASE_RANK: Final = {t: SEVERITY_RANK[base] for t, base in _BASE.items()}
"""The rank of each type's base severity (an unlisted type is Moderate)."""
_MODERATE: Final = SEVERITY_RANK["Moderate"]
_MINOR: Final = SEVERITY_RANK["Minor"]
_MAGNITUDE: Final = re.compile(r"magnitude[\s-]+(?:of\s+)?(\d+(?:\.\d+)?)", re.IGNORECASE)


def _magnitude(text: str, norm: str | None = None) -> re.Match[str] | None:
    """``_MAGNITUDE.search(text)``, started at the first "magnitude" of an ASCII text (every match
    starts with one; ``re.IGNORECASE`` folds exactly ``A-Z`` to ``a-z`` there). ``norm``:
    ``textnorm.padded(text)`` if the caller has it, where an ASCII text's letters are lower-cased
    one place further on (no lower-cased copy of the text to make)."""
    if text.isascii():
        if norm is not None:
            first = norm.find("magnitude") - 1
            if first < -1:
                return None
            return _MAGNITUDE.search(text, first)
        first = text.lower().find("magnitude")
        if first < 0:
            return None
        return _MAGNITUDE.search(text, first)
    return _MAGNITUDE.search(text)


def _cap(rank: int) -> Severity:
    return _BY_RANK[max(1, min(4, rank))]  # type: ignore[return-value]


def urgency(threats: Collection[str], cues: Mapping[str, int]) -> Urgency:
    """CAP urgency from the threat types and the counts of ``urg:*`` cues (see module docstring)."""
    return _urgency(_as_list(threats), _as_dict(cues))


def _as_list(threats: Collection[str]) -> list[str]:
    return threats if isinstance(threats, list) else list(threats)


def _as_dict(cues: Mapping[str, int]) -> dict[str, int]:
    return cues if isinstance(cues, dict) else dict(cues)


# The rules below take a list and a dict (what the classifier has): the compiled build then looks
# the cues up and tests the types with dict and list operations instead of generic method calls.


def _urgency(threats: list[str], cues: dict[str, int]) -> Urgency:
    if not threats:
        return "Unknown"
    past = cues.get("urg:Past", 0)
    now = cues.get("urg:Immediate", 0)
    if past and past >= now:
        return "Past"
    if now:
        return "Immediate"
    if cues.get("urg:Hedge", 0):
        return "Future"
    horizon = cues.get("urg:Expected", 0) + cues.get("urg:Future", 0)
    if (cues.get("urg:Now", 0) or cues.get("sev:Severe", 0)) and not horizon:
        return "Immediate"
    if cues.get("urg:Future", 0) and not cues.get("urg:Expected", 0):
        return "Future"
    if set(threats) <= {"cyber"} or (set(threats) <= {"cyber", "crime"} and "cyber" in threats):
        return "Unknown"
    return "Expected"


def severity(
    threats: Collection[str], cues: Mapping[str, int], text: str, urgency_value: Urgency
) -> Severity:
    """CAP severity from the threat types, cue counts and magnitudes (see module docstring)."""
    return _severity(_as_list(threats), _as_dict(cues), text, urgency_value)


def _severity(
    threats: list[str], cues: dict[str, int], text: str, urgency_value: Urgency, norm: str | None = None
) -> Severity:
    if not threats:
        return "Unknown"
    # Crime is petty (Minor) with a petty cue, unless kidnapping or terrorism is among the types.
    petty = bool(cues.get("sev:petty", 0)) and "kidnapping" not in threats and "terrorism" not in threats
    rank = 0  # below every base rank; threats is not empty
    for t in threats:
        r = _MINOR if petty and t == "crime" else _BASE_RANK.get(t, _MODERATE)
        if r > rank:
            rank = r
    if cues.get("sev:Severe", 0):
        rank = max(rank, 3)
    grave = cues.get("sev:Grave", 0)
    if grave:
        rank = max(rank, 4 if grave >= 2 else 3)
    if cues.get("sev:Extreme", 0):
        rank = 4
    if "natural_disaster" in threats and cues.get("sev:magnitude", 0):
        m = _magnitude(text, norm)
        if m:
            mag = float(m.group(1))
            quake = 1 if mag < 5 else 2 if mag < 6 else 3 if mag < 7 else 4
            rank = max(quake, rank if len(threats) > 1 and "natural_disaster" not in threats else quake)
            if cues.get("sev:Extreme", 0):
                rank = 4
    if urgency_value in ("Past", "Future"):
        rank -= 1
        if urgency_value == "Past" and cues.get("sev:AllClear", 0):
            rank = 1
    return _cap(rank)


def certainty(threats: Collection[str], cues: Mapping[str, int], urgency_value: Urgency) -> Certainty:
    """CAP certainty (see module docstring)."""
    return _certainty(_as_list(threats), _as_dict(cues), urgency_value)


def _certainty(threats: list[str], cues: dict[str, int], urgency_value: Urgency) -> Certainty:
    if not threats:
        return "Unknown"
    possible = cues.get("cert:Possible", 0)
    likely = cues.get("cert:Likely", 0)
    if cues.get("cert:Unlikely", 0) and urgency_value != "Past":
        return "Unlikely"
    if urgency_value in ("Past", "Immediate") and not cues.get("urg:Expected", 0) and possible <= likely + 1:
        return "Observed"
    if possible > likely:
        return "Possible"
    return "Likely"


def assess(
    threats: Collection[str],
    cues: Mapping[str, int],
    text: str,
    *,
    cap_urgency: Urgency | None = None,
    cap_severity: Severity | None = None,
    cap_certainty: Certainty | None = None,
    norm: str | None = None,
) -> tuple[Urgency, Severity, Certainty]:
    """Urgency, severity and certainty; a source-supplied CAP value wins over the text's. ``norm``:
    ``textnorm.padded(text)`` if the caller has it (spares a lower-cased copy of the text)."""
    types = _as_list(threats)
    counts = _as_dict(cues)
    urg = cap_urgency or _urgency(types, counts)
    sev = cap_severity or _severity(types, counts, text, urg, norm)
    cert = cap_certainty or _certainty(types, counts, urg)
    return urg, sev, cert
