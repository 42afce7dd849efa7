"""The cheap pre-checks in front of regexes must never change a regex's verdict."""

from __future__ import annotations

import random

from vigil_classify import geoparse, taxonomy
from vigil_classify.benchmark import make_alerts

_PIECES = (
    " ", "  ", "\n", "\t", ",", ", ", "&", " and ", "and", "the ", ".", "-", "'", "’", ":", ";", "(",
    "Hatay", "Gaziantep", "Port-au-Prince", "St.", "surrounding", "areas", "Region", "region", "REGIONS",
    "provinces", "State", "oblast", "Governorate", "departments", "prefecture", "counties", "County",
    "krai", "territory", "Territories", "districts", "countryside", "statement", "ſtate", "\u212arai",
    "İ", "é", "x_", "Ω", "9",
)  # fmt: skip


def _agrees(text: str, end: int) -> bool:
    return geoparse._region_cue(text, end) == (geoparse._REGION_CUE.match(text, end) is not None)


def test_region_cue_precheck_matches_regex_on_random_text() -> None:
    rnd = random.Random(3)
    for _ in range(20_000):
        text = "Lima" + "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 12)))
        assert _agrees(text, 4), text


def test_region_cue_precheck_matches_regex_on_generated_alerts() -> None:
    for title, text in make_alerts(200, seed=3):
        full = f"{title}\n\n{text}"
        for end in range(len(full) + 1):
            assert _agrees(full, end), (full, end)


def test_region_words_keep_the_original_alternation() -> None:
    alternation = "|".join(stem + ending for stem, ending in geoparse._REGION_WORDS)
    assert alternation == (
        "regions?|provinces?|states?|oblasts?|governorates?|departments?|prefectures?|count(?:ies|y)|"
        "krais?|territor(?:y|ies)|districts?"
    )


_WORDS = (
    " ", "  ", "\n", ",", ".", ";", "'", "_", "-", "(", "é", "İ",
    "no", "No", "NOT", "not", "nor", "n't", "don't", "do", "does", "will", "there", "is", "were", "longer",
    "reports", "of", "knowledge", "aware", "expected", "unlikely", "Without", "ruled", "out", "denied",
    "threat", "known", "north", "notice", "at", "At", "near", "outside", "around", "against", "on", "in",
    "front", "targeting", "attack", "area", "vicinity", "surrounding", "toward", "towards", "the", "The",
    "Embassy", "U.S.", "Main", "Square", "station", "national", "an", "and", "but",
)  # fmt: skip


def _random_windows(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rnd.choice(_WORDS) for _ in range(rnd.randint(0, 14))]
        out.append("".join(p if rnd.random() < 0.3 else p + " " for p in parts))
    return out


def test_negation_precheck_matches_regex() -> None:
    for window in _random_windows(5, 20_000):
        clause = window[taxonomy._clause_cut(window) :]
        expected = bool(clause) and taxonomy._NEGATOR.search(clause) is not None
        assert taxonomy._negated_window(window) == expected, window


def test_locative_precheck_matches_regex() -> None:
    for window in _random_windows(6, 20_000):
        assert taxonomy._locative_before(window) == (taxonomy._LOCATIVE.search(window) is not None), window


def test_feature_resident_and_magnitude_prechecks_match_regexes() -> None:
    from vigil_classify import severity

    pieces = (*_WORDS, *_PIECES, "Volcano", "river", "St.", "ave", "Rd", "Mall", "magnitude", "Magnitude-",
              "of", "6.2", "7", "living", "resident", "based", "registered", "in", "In", "\n")  # fmt: skip
    rnd = random.Random(9)
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) + rnd.choice(("", " ", "  ")) for _ in range(rnd.randint(0, 10)))
        assert geoparse._feature_after(text) == (geoparse._FEATURE_AFTER.match(text) is not None), text
        for start in range(len(text) + 1):
            ref = geoparse._RESIDENT_BEFORE.search(text, max(0, start - 30), start) is not None
            assert geoparse._resident_before(text, start) == ref, (text, start)
        got, ref_m = severity._magnitude(text), severity._MAGNITUDE.search(text)
        assert (got and (got.span(), got.group(1))) == (ref_m and (ref_m.span(), ref_m.group(1))), text


def _issuer_spans_by_regex(text: str, issuer: str | None) -> list[tuple[int, int]]:
    """The issuer's spans as they were found before the per-issuer patterns: regexes made per call."""
    import re

    if not issuer:
        return []
    spans: list[tuple[int, int]] = []
    needle = issuer.strip()
    if len(needle) >= 4:
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(needle), text)]
    seat = geoparse._ISSUER_SEAT.search(needle)
    if seat:
        pattern = r"(?:Embassy|Consulate(?:\s+General)?)\s+" + re.escape(seat.group(1)) + r"\b"
        spans += [(m.start(), m.end()) for m in re.finditer(pattern, text)]
    return spans


def test_issuer_spans_match_the_regexes() -> None:
    issuers = (
        None, "", " ", "US", "U.S. Embassy Moscow", "  U.S. Embassy Moscow ", "Consulate General Istanbul",
        "Embassy in Paris", "Mission", "aaaa", "a.b*c(d)", "British Embassy Kyiv", "Delegation Geneva",
        "U.S. Consulate General Ho Chi Minh City",
    )  # fmt: skip
    rnd = random.Random(5)
    pieces = (
        "U.S. Embassy Moscow", "Embassy Moscow", "Embassy  Moscow", "Consulate Istanbul",
        "Consulate General Istanbul", "Consulate General  Istanbul", "Embassy Paris", "Embassy in Paris",
        "Moscow", "Moscowa", "aaaaaaaaa", "a.b*c(d)", "Embassy Kyiv", "Mission", " ", ", ", ". ", "\n",
        "Embassy Ho Chi Minh City", "Ho Chi Minh City", "é",
    )  # fmt: skip
    texts = ["", "aaaa", "aaaaaaa"] + [
        "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 15))) for _ in range(2_000)
    ]
    for text in texts:
        for issuer in issuers:
            assert geoparse._issuer_spans(text, issuer) == _issuer_spans_by_regex(text, issuer), (text, issuer)


def test_a_lone_candidate_wins_with_the_margin_of_no_runner_up() -> None:
    """location_data_from_raw skips the scoring of a mention with one candidate: whatever the
    context and the region cue, the scoring would pick that candidate with a margin of 5.0."""
    for kind in ("city", "region", "country"):
        for code_in_context in (False, True):
            for region_cue in (None, False, True):
                scored = ((7, 1.0 + 2.0 * code_in_context, "FR", kind),)
                context = {"FR"} if code_in_context else {"DE"}
                assert geoparse._resolve(scored, context, region_cue) == (7, 5.0)
