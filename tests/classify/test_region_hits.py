"""The region cue from the region words' hits (session 7) gives what the regex gives."""

from __future__ import annotations

import random
import re
from typing import Any

from vigil_classify import geoparse, textnorm
from vigil_classify.engine import Classifier
from vigil_classify.geoparse import REGION_KEYS
from vigil_classify.taxonomy import REGION_MARK, Taxonomy

_PIECES = (
    "region", "Regions", "PROVINCE", "provinces", "state", "States", "statement", "oblast", "governorates",
    "department",
    "prefecture", "county", "Counties", "country", "krai", "krais", "territory", "Territories", "district", "Districts",
    "province_", "and", "And", "&", ",", "the", "Hatay", "Gaziantep", "Kahramanmaras", "St.", "O'Neil", "x-y", ":", "a",
    "Sinaloa", "in", "9", ".", "’", "\x1c",
)  # fmt: skip
_SEPS = ("", " ", " ", " ", ", ", "  ", "\n", "\t", "-", " and ", " & ", ": ")


def test_the_region_keys_are_the_words_of_the_regex() -> None:
    words = [k.strip() for k in REGION_KEYS]
    alternation = re.compile(
        "(?:" + "|".join(stem + ending for stem, ending in geoparse._REGION_WORDS) + ")", re.IGNORECASE
    )
    assert all(alternation.fullmatch(w) for w in words)
    # every word the alternation matches is one of them (each ending pattern is fully listed)
    for stem, ending in geoparse._REGION_WORDS:
        assert {w for w in words if w.startswith(stem) and alternation.fullmatch(w)} >= {
            stem + e for e in geoparse._REGION_ENDINGS[ending]
        }
        assert set(geoparse._REGION_ENDINGS) >= {ending}
    assert len(set(words)) == sum(len(geoparse._REGION_ENDINGS[e]) for _s, e in geoparse._REGION_WORDS)
    tax = Taxonomy()
    assert all(tax.entries[k][0] is REGION_MARK for k in REGION_KEYS)


def test_region_cue_at_is_the_region_cue(classifier: Classifier) -> None:
    assert classifier._region_mark is not None
    rnd = random.Random(75)
    matched = 0
    for _ in range(3000):
        text = "".join(rnd.choice(_PIECES) + rnd.choice(_SEPS) for _ in range(rnd.randint(0, 25)))
        if not text.isascii():
            continue  # (the engine takes _region_cue for those)
        norm = textnorm.padded(text)
        mark = classifier._region_mark
        regions = [e - v[0] + 1 for e, v in classifier.gazetteer.automaton.iter(norm) if v[2] is mark]
        for end in range(len(text) + 1):
            want = geoparse._region_cue(text, end, True)
            assert geoparse._region_cue_at(text, end, regions) == want, (text, end)
            matched += want
    assert matched > 1000


def test_sort_scored_is_list_sort() -> None:
    from vigil_classify import engine

    rnd = random.Random(76)
    labels = ["terrorism", "crime", "civil_unrest", "armed_conflict", "health", "cyber", "kidnapping", "a", "b"]
    for _ in range(20_000):
        picked = rnd.sample(labels, rnd.randint(0, 7))
        out: list[tuple[Any, ...]] = [
            (-rnd.choice((0.99, 0.75, 0.55, 0.35, 0.05)), label, {"type": label}) for label in picked
        ]
        ref = sorted(out, key=lambda item: (item[0], item[1]))
        engine._sort_scored(out)
        assert out == ref
