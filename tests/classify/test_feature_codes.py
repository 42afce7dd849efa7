"""The character-code pre-checks of geoparse's feature rules (session 7) are the tests they replace."""

from __future__ import annotations

import random

from vigil_classify import geoparse

_PIECES = (
    "Mount", "Mt", "Mt.", "Lake", "Lac", "Rio", "River", "Cape", "Gulf of", "Sea of", "mount", "the", "Moscow", "Etna",
    "volcano", "Volcano", "street", "St.", "Ave", "avenue", "Road", "park", "Bridge", "mall", "hotel", "st", "x", "of",
    ".", ",", "-", "\t", "\n", "\x1c", "  ", " ", " ", " ",
)  # fmt: skip


def _texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 30))) for _ in range(n)]


def test_feature_word_before_is_the_tail_tests() -> None:
    hits = 0
    for text in _texts(77, 4000):
        for start in range(len(text) + 1):
            before = text[start - 60 if start > 60 else 0 : start]
            tail = before[-5:]
            want = (
                (" " in tail or "." in tail)
                and before[-1:].isspace()
                and geoparse._ends_with_feature_word(before.rstrip())
            )
            assert geoparse._feature_word_before(text, start) == want, (text, start)
            hits += want
    assert hits > 1000


def test_feature_head_after_is_needed_for_a_feature_after() -> None:
    """Without the head, _feature_after is false; with it, as often as not."""
    heads = 0
    for text in _texts(78, 4000):
        for end in range(len(text) + 1):
            after = text[end : end + 40]
            head = after.lstrip().lower()
            want_head = head[:2] in geoparse._FEATURE_PREFIX_HEADS
            assert geoparse._feature_head_after(text, end) == want_head, (text, end)
            if not want_head:
                assert not geoparse._feature_after(after, True)
            heads += want_head
    assert heads > 1000


def test_ascii_locative_before_is_the_locative_test() -> None:
    from vigil_classify import taxonomy

    rnd = random.Random(79)
    pieces = ("at", "AT", "near", "Near", "on", "outside", "around", "against", "toward", "towards", "in front of",
              "targeting", "attack on", "area around", "vicinity of", "surrounding", "the", "The", "U.S.", "Embassy",
              "Parliament", "x_y", "_", ".", ",", "(", "'", "-", "9", "cat", "atone", "nearly", "front", " ", "  ",
              "\n", "\t")  # fmt: skip
    found = 0
    for _ in range(4000):
        text = "".join(rnd.choice(pieces) + rnd.choice(("", " ", " ")) for _ in range(rnd.randint(0, 20)))
        for start in range(len(text) + 1):
            lo = start - 40 if start > 40 else 0
            want = taxonomy._locative_before(text[lo:start], True)
            assert taxonomy._ascii_locative_before(text, lo, start) == want, (text, start)
            found += want
    assert found > 1000
