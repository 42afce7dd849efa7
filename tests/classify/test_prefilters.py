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
