"""Geoparsing: find the places an alert is about and resolve each to one gazetteer entry.

Rules (in the order they apply):

1. *Match*: one Aho-Corasick pass over the normalised text; hits are word-bounded by construction.
   Overlaps keep the longest hit ("New Delhi" beats "Delhi").
2. *Shape*: a hit must start with a capital letter in the original text. Names that are ordinary
   words ("Nice", "Reading", "Police", "Most", see ``data/common_words.txt``) also need context: a
   locative word right before ("in Nice", "near Reading") or their country named in the text.
3. *Not a threat location*: the issuer's own seat inside the issuer's name ("U.S. Embassy Moscow"),
   the far side of a border ("the border with Ukraine"), the origin of fire ("rockets fired from
   Gaza"), a named natural feature ("the Villarrica volcano", "Mount X", "Lake X") and street names
   ("Kenyatta Avenue").
4. *Resolve*: each candidate scores log10(population) + 1.5 for a primary name, +4 when its country is
   named (or implied by an unambiguous place) in the text, +3 for a region when a region word
   follows ("Hatay, Gaziantep and Kahramanmaras provinces"). The best candidate wins.
5. *Countries*: a country is listed as a location only when no city or region of it was found (the
   labels list the most specific places); it always appears in ``countries``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, NamedTuple, TypedDict

from vigil_shared.events import Location

from vigil_classify.gazetteer import FlatCandidates, Gazetteer, Place, candidate_pairs, common_words, prior
from vigil_classify.textnorm import AutomatonHit, normalise, sort_automaton_hits


class EvidencePayload(TypedDict):
    """:class:`vigil_shared.events.Evidence` as JSON data."""

    text: str
    start: int
    end: int


class LocationPayload(TypedDict):
    """:class:`vigil_shared.events.Location` as JSON data."""

    name: str
    country_code: str
    geonameid: int | None
    latitude: float | None
    longitude: float | None
    kind: str
    confidence: float
    evidence: list[EvidencePayload]
    admin1: str | None


_REGION_WORDS = (
    ("region", "s?"),
    ("province", "s?"),
    ("state", "s?"),
    ("oblast", "s?"),
    ("governorate", "s?"),
    ("department", "s?"),
    ("prefecture", "s?"),
    ("count", "(?:ies|y)"),
    ("krai", "s?"),
    ("territor", "(?:y|ies)"),
    ("district", "s?"),
)
"""The region words of :data:`_REGION_CUE` as (stem, ending pattern): the alternation is built from
them, so every region word the regex can match begins with one of :data:`_REGION_STEMS`."""
_REGION_STEMS: Final = tuple(stem for stem, _ending in _REGION_WORDS)
_REGION_CUE: Final = re.compile(
    r"(?:\s*(?:,|and|&)\s*(?:the\s+)?[A-Z][\w'’.-]*(?:[ -][A-Z][\w'’.-]*){0,2})*\s+"
    r"(?:" + "|".join(stem + ending for stem, ending in _REGION_WORDS) + r")\b",
    re.IGNORECASE,
)
_REGION_SPAN: Final = 200
"""Longest stretch before a colon that :func:`_region_cue` pre-checks for a region word."""
_REGION_STEM: Final = re.compile("|".join(_REGION_STEMS))
_REGION_NEXT: Final = frozenset(",&aA" + "".join(stem[0] + stem[0].upper() for stem in _REGION_STEMS))
"""ASCII characters that can follow leading whitespace in a match."""


_REGION_ENDINGS: Final = {"s?": ("", "s"), "(?:ies|y)": ("ies", "y"), "(?:y|ies)": ("y", "ies")}
"""The words each ending pattern of :data:`_REGION_WORDS` allows (all it has)."""
REGION_KEYS: Final = tuple(
    f" {stem}{ending} " for stem, pattern in _REGION_WORDS for ending in _REGION_ENDINGS[pattern]
)
"""Every region word :data:`_REGION_CUE` can end with, as a padded automaton key: the taxonomy carries
them (with its ``REGION_MARK`` for label entries), so the engine knows where they occur
(:func:`_region_cue_at`)."""
_REGION_NEXT_TABLE: Final = bytes(1 if chr(code) in _REGION_NEXT else 0 for code in range(128))
""":data:`_REGION_NEXT` as a table of the ASCII codes."""


def _ascii_space(c: int) -> bool:
    """``chr(c).isspace()`` for an ASCII code ``c``."""
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


def _region_cue_at(text: str, end: int, regions: list[int]) -> bool:
    """``_region_cue(text, end, True)`` for an ASCII ``text``, from ``regions``: the starts (text
    offsets) of the hits of :data:`REGION_KEYS` in its normalised text, or a superset of them.

    Its tests of the characters at ``end`` by their codes; then, a match ends with whitespace and a
    region word followed by a word boundary: in an ASCII text that word, lower-cased, is a hit of its
    key in the normalised text, after ``end`` and before the next colon (see :func:`_region_cue`).
    When whitespace at ``end`` is followed by a character other than ``,``, ``&``, ``a`` or ``A``,
    the repeated group (which begins with ``,``, ``and`` or ``&`` after whitespace) matches nothing,
    so the region word must start at that character. Without such a hit the regex cannot match."""
    n = len(text)
    first = -1  # where the region word must start, if known
    if end < n:
        c = ord(text[end])
        if c != 44 and c != 38:  # , &
            if _ascii_space(c):
                j = end + 1
                lim = end + 16 if end + 16 < n else n
                while j < lim and _ascii_space(ord(text[j])):
                    j += 1
                if j < lim:
                    d = ord(text[j])
                    if not _REGION_NEXT_TABLE[d]:
                        return False
                    if d != 44 and d != 38 and d != 97 and d != 65:
                        first = j
            elif c != 97 and c != 65:  # a A
                return False
    if first >= 0:
        for s in regions:
            if s == first:
                return _region_cue(text, end, True)
        return False
    stop = text.find(":", end, end + _REGION_SPAN)
    if stop < 0:
        stop = n
    for s in regions:
        if end < s < stop:
            return _region_cue(text, end, True)
    return False


def _has_region_stem(low: str) -> bool:
    """``_REGION_STEM.search(low) is not None``: an alternation of plain words matches exactly where
    one of them occurs (substring tests skip through the text; the regex tries every position)."""
    return any(stem in low for stem in _REGION_STEMS)


def _region_cue(text: str, end: int, ascii: bool = False) -> bool:
    """``_REGION_CUE.match(text, end) is not None``, without the regex when it cannot match.

    The regex is ``(\\s*(,|and|&)\\s*...)*\\s+WORD\\b``: a match starts with whitespace, ``,``, ``&`` or
    ``a``/``A``, and after leading whitespace comes ``,``, ``&``, ``a``/``A`` or the initial of a
    region word. It consumes only whitespace, ``,``, ``&``, word characters, apostrophes, ``.``
    and ``-``, so it ends before the next ``:``; and in ASCII text ``re.IGNORECASE`` folds exactly
    ``A-Z`` to ``a-z``, so its region word shows up, lower-cased, in ``text[end:colon].lower()`` and
    starts with one of :data:`_REGION_STEMS`. Otherwise the (backtracking) regex is skipped.
    ``ascii=True`` says ``text`` is known to be ASCII (it spares the tests of its slices).
    """
    c = text[end : end + 1]
    if c not in ",&":
        if c.isspace():
            d = text[end : end + 16].lstrip()[:1]
            if d and (ascii or d.isascii()) and d not in _REGION_NEXT:
                return False
        elif (ascii or c.isascii()) and c not in "aA":
            return False
    colon = text.find(":", end, end + _REGION_SPAN)
    if colon >= 0:
        window = text[end:colon]
        if (ascii or window.isascii()) and not _has_region_stem(window.lower()):
            return False
    return _REGION_CUE.match(text, end) is not None


_LOCATIVE_BEFORE: Final = re.compile(
    r"\b(?:in|at|near|from|to|around|outside|across|throughout|into|toward|towards|via)\s+$",
    re.IGNORECASE,
)
_BORDER_BEFORE: Final = re.compile(
    r"\b(?:border(?:s|ing)?(?:\s+(?:with|of))?|frontier\s+with)\s+(?:the\s+)?$", re.IGNORECASE
)
_ORIGIN_BEFORE: Final = re.compile(
    r"\b(?:fired|fire|launched|launches|rockets?|missiles?|drones?|shelling|projectiles?)\b"
    r"[^.;]{0,40}\bfrom\s+(?:the\s+)?(?:(?:north|south|east|west)(?:ern)?\s+)?$",
    re.IGNORECASE,
)
_FEATURE_BEFORE: Final = re.compile(r"\b(?:Mount|Mt\.?|Lake|Lac|Rio|River|Cape|Gulf of|Sea of)\s+$")
_FEATURE_WORDS: Final = ("Mount", "Mt", "Mt.", "Lake", "Lac", "Rio", "River", "Cape", "Gulf of", "Sea of")
"""What :data:`_FEATURE_BEFORE` needs right before the trailing space (a cheap pre-check)."""
_FEATURE_TAILS: Final = frozenset(word[-2:] for word in _FEATURE_WORDS)
"""The last two characters of each of :data:`_FEATURE_WORDS` (each has two or more)."""


def _ends_with_feature_word(text: str) -> bool:
    """``text.endswith(_FEATURE_WORDS)``, with one set lookup of its last two characters first."""
    return text[-2:] in _FEATURE_TAILS and text.endswith(_FEATURE_WORDS)
_FEATURE_TAIL_CODES: Final = frozenset(ord(tail[0]) * 128 + ord(tail[1]) for tail in _FEATURE_TAILS)
""":data:`_FEATURE_TAILS` by character codes (first * 128 + second)."""


def _feature_word_before(text: str, start: int) -> bool:
    """For an ASCII ``text``, with ``before = text[max(0, start - 60):start]`` and ``tail =
    before[-5:]``: ``(" " in tail or "." in tail) and before[-1:].isspace() and
    _ends_with_feature_word(before.rstrip())``, by character codes up to the last test (which runs
    only when the two characters before the trailing whitespace are one of :data:`_FEATURE_TAILS`)."""
    if start < 1:
        return False
    c = ord(text[start - 1])
    if not _ascii_space(c):
        return False
    lo = start - 60 if start > 60 else 0
    if c != 32:  # a space or a period among the last five characters
        i = start - 2
        low5 = start - 5 if start > 5 else 0
        while i >= low5:
            d = ord(text[i])
            if d == 32 or d == 46:
                break
            i -= 1
        if i < low5:
            return False
    k = start - 2  # the last character of before.rstrip()
    while k >= lo and _ascii_space(ord(text[k])):
        k -= 1
    if k - 1 < lo or ord(text[k - 1]) * 128 + ord(text[k]) not in _FEATURE_TAIL_CODES:
        return False
    return _ends_with_feature_word(text[lo : k + 1])


_FEATURE_AFTER_WORDS = (
    "volcano|volcanic|eruption|river|lake|glacier|mountain|range|strait|avenue|street|road|boulevard|"
    r"square|st\.?|ave\.?|rd\.?|highway|bridge|park|university|stadium|hotel|mall"
)
_FEATURE_AFTER: Final = re.compile(r"^\s+(?:" + _FEATURE_AFTER_WORDS + r")\b", re.IGNORECASE)
_FEATURE_PREFIXES: Final = tuple(word.removesuffix(r"\.?") for word in _FEATURE_AFTER_WORDS.split("|"))
"""The letters each word :data:`_FEATURE_AFTER` looks for starts with."""
_FEATURE_PREFIX_HEADS: Final = frozenset(prefix[:2] for prefix in _FEATURE_PREFIXES)


_FEATURE_HEAD_CODES: Final = frozenset(ord(head[0]) * 128 + ord(head[1]) for head in _FEATURE_PREFIX_HEADS)
""":data:`_FEATURE_PREFIX_HEADS` by character codes (first * 128 + second)."""


def _feature_head_after(text: str, end: int) -> bool:
    """For an ASCII ``text``: whether ``head = text[end:end + 40].lstrip().lower()`` starts with two
    characters of :data:`_FEATURE_PREFIX_HEADS` (without which :func:`_feature_after` is false), by
    character codes."""
    lim = end + 40 if end + 40 < len(text) else len(text)
    j = end
    while j < lim and _ascii_space(ord(text[j])):
        j += 1
    if j + 1 >= lim:
        return False
    a = ord(text[j])
    b = ord(text[j + 1])
    if 65 <= a <= 90:
        a += 32
    if 65 <= b <= 90:
        b += 32
    return a * 128 + b in _FEATURE_HEAD_CODES


def _feature_after(after: str, ascii: bool = False) -> bool:
    """``_FEATURE_AFTER.match(after) is not None``; the regex is skipped when ``after`` is ASCII (where
    ``re.IGNORECASE`` folds exactly ``A-Z`` to ``a-z``) and no feature word follows the leading
    whitespace. ``ascii=True``: ``after`` is known to be ASCII."""
    if ascii or after.isascii():
        head = after.lstrip().lower()
        # (every prefix has two characters or more: its first two are a cheap first test)
        if head[:2] not in _FEATURE_PREFIX_HEADS or not head.startswith(_FEATURE_PREFIXES):
            return False
    return _FEATURE_AFTER.match(after) is not None
_NATURAL_AFTER: Final = re.compile(r"^\s+(?:volcano|volcanic|eruption|river|lake|glacier)\b", re.IGNORECASE)
_US_GOV_AFTER: Final = re.compile(
    r"^\s+(?:government|embassy|embassies|citizens?|consulates?|department|mission|nationals|"
    r"passport|military|forces|authorities|officials?|personnel|persons)\b",
    re.IGNORECASE,
)
_OFFICE_BEFORE: Final = re.compile(
    r"(?i:\b(?:embass(?:y|ies)|consulates?(?:\s+general)?|high\s+commissions?|"
    r"consular\s+(?:offices?|sections?|posts?))\s+(?:in|at))\s+"
    r"(?:[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,2}(?:\s*,\s*|\s+and\s+|\s+or\s+)(?:the\s+)?)*$"
)
"""A place named as the seat of a consular office ("the Embassy in Tokyo and the Consulate in Osaka")."""
_OFFICE_LOCATIVE: Final = re.compile(
    r"\b(?:at|to|near|outside|around|from|visit|contact)\s+(?:the\s+|our\s+)?(?:U\.S\.\s+|[A-Z]\w+\s+)?"
    r"(?i:embass|consul|high\s+commission)"
)
_SENTENCE_BREAK: Final = re.compile(r"[a-z0-9)][.!?]\s")
_ISSUER_SEAT: Final = re.compile(
    r"(?:Embassy|Consulate(?:\s+General)?|Mission|Office|Post|Delegation)\s+(?:in\s+)?(.+?)\s*$"
)


@dataclass(slots=True, init=False)
class _Found:
    place: int
    name: str
    kind: str
    confidence: float
    evidence: list[EvidencePayload]

    def __init__(
        self, place: int, name: str, kind: str, confidence: float, evidence: list[EvidencePayload] | None = None
    ) -> None:
        # Written out (init=False): the compiled build constructs the object natively instead of
        # calling the dataclass's generated (interpreted) __init__ with an argument tuple.
        self.place = place
        self.name = name
        self.kind = kind
        self.confidence = confidence
        self.evidence = [] if evidence is None else evidence


def _issuer_spans(text: str, issuer: str | None) -> list[tuple[int, int]]:
    if not issuer:
        return []
    needle, seat = _issuer_patterns(issuer)
    spans: list[tuple[int, int]] = []
    if needle:
        # the non-overlapping occurrences, leftmost first: what re.finditer(re.escape(needle)) gives
        size = len(needle)
        i = text.find(needle)
        while i >= 0:
            spans.append((i, i + size))
            i = text.find(needle, i + size)
    if seat is not None:
        # "Embassy Moscow" (no "in") names the issuer, not a place of the alert.
        for m in seat.finditer(text):
            spans.append((m.start(), m.end()))
    return spans


@lru_cache(maxsize=1024)
def _issuer_patterns(issuer: str) -> tuple[str, re.Pattern[str] | None]:
    """What :func:`_issuer_spans` looks for in a text of this issuer: the issuer's name (``""`` when
    shorter than 4 characters) and the pattern of its seat named after its office ("Embassy
    Moscow"), if the name has one. Worked out once per issuer (a feed has one or a few), not per
    alert: the seat's pattern was compiled, or found in ``re``'s cache, on every alert."""
    needle = issuer.strip()
    seat = _ISSUER_SEAT.search(needle)
    pattern = (
        re.compile(r"(?:Embassy|Consulate(?:\s+General)?)\s+" + re.escape(seat.group(1)) + r"\b")
        if seat
        else None
    )
    return (needle if len(needle) >= 4 else ""), pattern


class _CandidateInfo(NamedTuple):
    """What find_locations needs to know about one automaton value, computed once per value."""

    ctx_codes: tuple[str, ...]
    """Countries this name puts into context (its only country, or the countries it names)."""
    scored: tuple[tuple[int, float, str, str], ...]
    """(place index, prior, country code, kind) per candidate, in the gazetteer's order."""
    regional: bool
    """Whether a candidate is a region (only then can the region cue change a score)."""


_INFO: Final[dict[int, tuple[FlatCandidates, _CandidateInfo]]] = {}


def _info(places: list[Place], cands: FlatCandidates) -> _CandidateInfo:
    # Keyed by identity: the automaton hands out the same tuple object for a key on every hit; the
    # tuple itself is kept in the value so its id cannot be reused while the entry lives.
    hit = _INFO.get(id(cands))
    if hit is not None and hit[0] is cands:
        return hit[1]
    pairs = candidate_pairs(cands)
    codes = {places[c[0]].country_code for c in pairs}
    single = len(codes) == 1
    ctx = tuple(
        dict.fromkeys(
            places[c[0]].country_code for c in pairs if single or places[c[0]].kind == "country"
        )
    )
    scored = tuple(
        (place, prior(places[place], primary), places[place].country_code, places[place].kind)
        for place, primary in pairs
    )
    info = _CandidateInfo(ctx, scored, any(kind == "region" for _p, _b, _c, kind in scored))
    if len(_INFO) > 200_000:
        _INFO.clear()
    _INFO[id(cands)] = (cands, info)
    return info


def find_locations(
    gaz: Gazetteer, text: str, norm_padded: str, issuer: str | None = None
) -> tuple[list[Location], list[str]]:
    """Locations (most specific places first found) and the sorted country codes they imply."""
    data, countries = find_location_data(gaz, text, norm_padded, issuer)
    return [Location.model_validate(d) for d in data], countries


def find_location_data(
    gaz: Gazetteer,
    text: str,
    norm_padded: str,
    issuer: str | None = None,
    automaton_hits: list[tuple[int, tuple[int, Any, Any, Any]]] | None = None,
) -> tuple[list[LocationPayload], list[str]]:
    """:func:`find_locations` as plain dicts in :class:`Location`'s shape (validated in bulk later).

    ``automaton_hits`` is ``list(gaz.automaton.iter(norm_padded))`` when the caller has it already (the
    automaton may carry other phrases too: their values have no candidates)."""
    hits: list[AutomatonHit] = [
        hit
        for hit in (gaz.automaton.iter(norm_padded) if automaton_hits is None else automaton_hits)
        if hit[1][1] is not None
    ]
    return location_data_from_hits(gaz, text, hits, issuer)


def location_data_from_raw(
    gaz: Gazetteer, text: str, raw: list[tuple[int, int, FlatCandidates]], issuer: str | None = None
) -> tuple[list[LocationPayload], list[str]]:
    """:func:`find_location_data` from the place hits as ``(start, -length, candidates)`` in any
    order (``start`` in padded coordinates, as :func:`find_location_data` makes them from the
    automaton's hits)."""
    # (start, -length) is the hit (end, (length, candidates)) with end = start + length - 1
    return location_data_from_hits(gaz, text, [(s - nl - 1, (-nl, c, None, None)) for s, nl, c in raw], issuer)


def location_data_from_hits(
    gaz: Gazetteer,
    text: str,
    hits: list[AutomatonHit],
    issuer: str | None = None,
    regions: list[int] | None = None,
) -> tuple[list[LocationPayload], list[str]]:
    """:func:`find_location_data` from the automaton's hits that have place candidates, ``(end,
    (length, candidates, ...))`` as it yields them, in any order (``hits`` is sorted in place): the
    engine keeps the automaton's own hit tuples (no tuple made per hit). ``regions``: where the
    region words (:data:`REGION_KEYS`) occur, if the caller knows (see :func:`_region_cue_at`)."""
    if not hits:
        return [], []
    places = gaz.places
    # padded coordinates: key spans [end_idx-length+1, end_idx]; core word = +1 .. -1; minus pad.
    # (start, -length) sorts leftmost-longest first; equal pairs are the same key.
    sort_automaton_hits(hits)
    common = common_words()
    # An ASCII text spares the ASCII tests of its slices; a character of it is upper-case exactly
    # when it is one of A-Z.
    ascii = text.isascii()
    at: list[int] = regions if regions is not None else []
    fast = regions is not None and ascii
    mentions: list[tuple[int, int, FlatCandidates]] = []
    features: set[str] = set()
    last_end = -1
    for place_hit in hits:
        value: tuple[Any, ...] = place_hit[1]
        n: int = value[0]
        end_idx: int = place_hit[0]
        start = end_idx - n + 1
        if start < last_end:
            continue
        end = start + n - 2
        cands: FlatCandidates = value[1]
        if not (65 <= ord(text[start]) <= 90 if ascii else text[start].isupper()):
            continue
        before = text[start - 60 if start > 60 else 0 : start]  # (no max() call per hit)
        if ascii:
            feature_before = _feature_word_before(text, start) and _FEATURE_BEFORE.search(before) is not None
        else:
            tail = before[-5:]
            feature_before = (
                (" " in tail or "." in tail)
                and before[-1:].isspace()
                and _ends_with_feature_word(before.rstrip())
                and _FEATURE_BEFORE.search(before) is not None
            )
        if feature_before:
            features.add(text[start:end])
            last_end = end
            continue
        if ("order" in before and _BORDER_BEFORE.search(before)) or (
            "from" in before and _ORIGIN_BEFORE.search(before)
        ):
            last_end = end
            continue
        if end < len(text) and text[end] == " " and (not ascii or _feature_head_after(text, end)):
            after = text[end : end + 40]
            if _feature_after(after, ascii):
                if _NATURAL_AFTER.match(after) or (
                    before[-1:].isspace()
                    and _ends_with_feature_word(before.rstrip())
                    and _FEATURE_BEFORE.search(before)
                ):
                    features.add(text[start:end])
                last_end = end
                continue
        mentions.append((start, end, cands))
        last_end = end
    if features:
        # A name used for a volcano / lake / river in this alert is that feature everywhere in it.
        mentions = [m for m in mentions if text[m[0] : m[1]] not in features]
    if not mentions:
        return [], []

    excluded = _issuer_spans(text, issuer)

    # Country context: countries named in the text and countries of unambiguous places.
    context: set[str] = set()
    prepared: list[tuple[int, int, _CandidateInfo, str, str, bool]] = []
    for start, end, cands in mentions:
        hit = _INFO.get(id(cands))
        info = hit[1] if hit is not None and hit[0] is cands else _info(places, cands)
        surface = text[start:end]
        low = surface.lower()
        is_common = low in common
        prepared.append((start, end, info, surface, low, is_common))
        if not is_common:
            # (one add per code: set.update of a tuple is a generic iteration, ~500 instructions)
            for code in info.ctx_codes:
                context.add(code)

    # (a dict keeps its insertion order, also after a deletion: the order the places were found in)
    found: dict[tuple[str, str], _Found] = {}
    has_country = False
    last_city = (-1, "")
    """(end, country) of the last city mention: "Culiacan, Sinaloa" names the state only as context."""
    for start, end, info, surface, low, is_common in prepared:
        if excluded and any(s <= start and end <= e for s, e in excluded):
            continue
        scored = info.scored
        if len(scored) == 1:
            # A lone candidate wins whatever its score, with the margin of no runner-up; the region
            # cue, which only moves scores, is then left to a city winner (below).
            best = scored[0][0]
            region_cue = None
            margin = 5.0
        else:
            # The region cue (a regex behind pre-checks) matters only for a region candidate or a
            # city winner: evaluated for those alone (it has no side effects).
            if info.regional:
                region_cue = _region_cue_at(text, end, at) if fast else _region_cue(text, end, ascii)
            else:
                region_cue = None
            best, margin = _resolve(scored, context, region_cue)
        p = places[best]
        if is_common and not (
            (p.country_code in context and p.kind != "country")
            or _LOCATIVE_BEFORE.search(text[max(0, start - 12) : start])
        ):
            continue
        if p.kind == "country" and p.country_code == "US" and _US_GOV_AFTER.match(text, end):
            continue
        if text[end : end + 4] == " Day":  # text.startswith(" Day", end), without a generic call
            # a holiday ("Victoria Day", "Quebec Day"), not a place
            continue
        conf = 0.6 + (4.0 if margin > 4.0 else margin) * 0.08  # min(margin, 4.0)
        if is_common:
            conf -= 0.2
        kind = p.kind
        if kind == "city":
            if region_cue is None:
                region_cue = _region_cue_at(text, end, at) if fast else _region_cue(text, end, ascii)
            if region_cue:
                kind = "region"
        if kind == "city":
            last_city = (end, p.country_code)
        elif (
            kind == "region"
            and last_city[0] == start - 2
            and last_city[1] == p.country_code
            and text[start - 2 : start] == ", "
        ):
            continue
        name = p.name
        if kind != "country" and p.name.lower().startswith(low + " "):
            name = surface
        k = (_fold(name), p.country_code)
        ev: EvidencePayload = {"text": surface, "start": start, "end": end}
        f = found.get(k)
        if f is not None:
            f.evidence.append(ev)
            if conf > f.confidence:  # max(f.confidence, conf)
                f.confidence = conf
        else:
            found[k] = _Found(best, name, kind, conf, [ev])
            if kind == "country":
                has_country = True

    # The entries are read from the dict's items and values: a lookup by a (name, country) key
    # hashes the tuple and compares it again (~0.2 us each, several per place).
    if len(found) > 1:
        _merge_neighbourhoods(places, found)
    # (_merge_neighbourhoods drops only cities: a country found above is still there)
    if has_country and len(found) > 1:
        _drop_office_seats(text, found)
    specific = {k[1] for k, f in found.items() if f.kind != "country"}
    locations: list[LocationPayload] = []
    countries: set[str] = set()
    for f in found.values():
        p = places[f.place]
        countries.add(p.country_code)
        if f.kind == "country" and p.country_code in specific:
            continue
        locations.append(_location(p, f))
    return locations, sorted(countries)


def _resolve(
    scored: tuple[tuple[int, float, str, str], ...], context: set[str], region_cue: bool | None
) -> tuple[int, float]:
    """The winning candidate of a mention (rule 4 of the module docstring) and its margin over the
    runner-up (5.0 without one): the first best score wins a tie."""
    best = -1
    best_score = -1e9
    second = -1e9
    for place, base, code, kind in scored:
        score = base
        if code in context:
            score += 4.0
        if kind == "region" and region_cue:
            score += 3.0
        if kind == "country":
            score += 3.0
        if score > best_score:
            second, best_score, best = best_score, score, place
        elif score > second:
            second = score
    return best, (best_score - second if second > -1e9 else 5.0)


def _office_seat(text: str, start: int) -> bool:
    """Whether the place at ``start`` is named only as a consular office's seat, as the speaker
    ("The Embassy in Tokyo and the Consulate in Osaka will ...") and not as a place to go
    ("ballots can be dropped off at the Embassy in Berlin")."""
    window = text[max(0, start - 160) : start]
    cut = 0
    for m in _SENTENCE_BREAK.finditer(window):
        cut = m.end()
    window = window[cut:]
    return _OFFICE_BEFORE.search(window) is not None and _OFFICE_LOCATIVE.search(window) is None


def _drop_office_seats(text: str, found: dict[tuple[str, str], _Found]) -> None:
    """A notice for a whole country ("Citizens living in Japan can vote ... The Embassy in Tokyo and
    the Consulate in Osaka will ...") is about the country: the cities named only as the seats of
    consular offices are dropped when the notice addresses the people living in that country
    ("citizens living in / resident in Japan"; not "consulates throughout Japan", not "In Turkey, the
    consulate in Istanbul warned")."""
    scope: set[str] = set()
    for k, f in found.items():
        if f.kind == "country":
            for e in f.evidence:
                if _resident_before(text, e["start"]):
                    scope.add(k[1])
                    break
    if not scope:
        return
    for k, f in list(found.items()):
        if f.kind != "country" and k[1] in scope and all(_office_seat(text, e["start"]) for e in f.evidence):
            del found[k]


_RESIDENT_BEFORE: Final = re.compile(r"\b(?:living|resident|residing|based|registered)\s+in\s+$")


def _resident_before(text: str, start: int) -> bool:
    """``_RESIDENT_BEFORE.search(text, start - 30, start)``; a match ends with ``in`` and whitespace
    (``$`` at ``start`` or before a final newline), so without that the regex is skipped."""
    lo = max(0, start - 30)
    if not text[lo:start].rstrip().endswith("in"):
        return False
    return _RESIDENT_BEFORE.search(text, lo, start) is not None


def _merge_neighbourhoods(places: list[Place], found: dict[tuple[str, str], _Found]) -> None:
    """Drop a small "city" lying inside a much larger found city (a district such as a landmark quarter)."""
    keys: list[tuple[str, str]] = []
    cities: list[_Found] = []
    for k, f in found.items():
        if f.kind == "city" and places[f.place].latitude is not None:
            keys.append(k)
            cities.append(f)
    n = len(cities)
    if n < 2:
        return  # a city merges only into another one
    # whether cities[j] is still in found (each city is dropped, if at all, in its own turn below)
    kept = [True] * n
    for i in range(n):
        f = cities[i]
        small = places[f.place]
        for j in range(n):
            if j == i or not kept[j]:
                continue
            other = cities[j]
            big = places[other.place]
            if big.country_code != small.country_code or big.population < 5 * max(small.population, 1):
                continue
            assert small.latitude is not None
            assert small.longitude is not None
            assert big.latitude is not None
            assert big.longitude is not None
            dlat = (small.latitude - big.latitude) * 111.0
            dlon = (small.longitude - big.longitude) * 111.0 * math.cos(math.radians(big.latitude))
            if dlat * dlat + dlon * dlon < 64.0:
                other.evidence.extend(f.evidence)
                del found[keys[i]]
                kept[i] = False
                break


_ROUNDED: Final[dict[float, float]] = {}
"""Memo of the rounded, clamped location confidences (``round`` is the dear part)."""


def _location(p: Place, f: _Found) -> LocationPayload:
    kind = "country" if f.kind == "country" else ("region" if f.kind == "region" else "city")
    conf = _ROUNDED.get(f.confidence)
    if conf is None:
        if len(_ROUNDED) > 4096:
            _ROUNDED.clear()
        conf = _ROUNDED[f.confidence] = round(min(0.99, max(0.05, f.confidence)), 3)
    return {
        "name": f.name,
        "country_code": p.country_code,
        "geonameid": p.geonameid,
        "latitude": p.latitude,
        "longitude": p.longitude,
        "kind": kind,
        "confidence": conf,
        "evidence": f.evidence[:5],
        "admin1": p.admin1,
    }


_FOLDED: Final[dict[str, str]] = {}
"""Memo of :func:`_fold` (place names recur): a plain dict, read natively by the compiled build
(an ``lru_cache`` wrapper is a generic call with a key object made per call)."""


def _fold(name: str) -> str:
    folded = _FOLDED.get(name)
    if folded is None:
        if len(_FOLDED) > 65536:
            _FOLDED.clear()
        folded = _FOLDED[name] = " ".join(normalise(name).split())
    return folded
