"""The cheap pre-checks in front of regexes must never change a regex's verdict."""

from __future__ import annotations

import random

from vigil_classify import geoparse
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
