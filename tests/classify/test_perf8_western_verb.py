"""``_western_verb_before`` (session 8: the regex tried only where a verb occurs) is the regex search it
replaces, on random and real windows."""

from __future__ import annotations

import random

from vigil_classify import taxonomy
from vigil_classify import taxonomy_data as data
from vigil_classify.benchmark import make_alerts
from vigil_shared.events import classified_text

_PIECES = (
    *data.WESTERN_VERBS, "Frequented By", "POPULAR WITH", "aimed  at", "used-by", "targeted\\tat", "xused by",
    " ", "  ", "\t", "\n", ", ", ". ", "the", "many", "Western", "foreign", "visitors", "é", "İ", "ſ", "K",
    "\u212a", "by", "at", "_", "3", "places", "hotels",
)  # fmt: skip


def _check(window: str) -> bool:
    want = taxonomy._WESTERN_VERB.search(window) is not None
    assert taxonomy._western_verb_before(window) == want, window
    if window.isascii():
        assert taxonomy._western_verb_before(window, True) == want, window
    return want


def test_random_windows() -> None:
    rnd = random.Random(91)
    found = 0
    for _ in range(30_000):
        found += _check("".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 9))))
    assert found > 200
    # windows that end as the regex wants (verb, whitespace, up to two words), or nearly
    tails = ("", " ", "  ", " many ", " many young ", " many young foreign ", " x", "\n", " the_", " é ")
    found = 0
    for _ in range(20_000):
        head = "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 4)))
        verb = rnd.choice(_PIECES[:20])
        found += _check(head + rnd.choice(("", " ", "x", "-")) + verb + rnd.choice(tails))
    assert found > 5_000


def test_windows_of_fixture_and_generated_texts(fixture_texts: list[str]) -> None:
    texts = fixture_texts + [classified_text(title, text) for title, text in make_alerts(200, seed=41)]
    for text in texts:
        for start in range(0, len(text), 7):
            _check(text[max(0, start - 40) : start])
