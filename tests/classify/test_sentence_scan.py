"""The sentence-end scan of ``sentence_ids`` (session 7) finds what the regex search found."""

from __future__ import annotations

import random

from vigil_classify import taxonomy

_PIECES = (
    " ", "  ", "\n", "\n\n", ". ", ".", "..", "...", "! ", "?", "? ", "; ", ";", ".;", ".\n", '." ', ".) ", ".’ ",
    "”", "’", ")", '"', "\t", "\x1c", "\xa0", "\u2003", "U.S.", "A. ", "St. ", " St.", "Mr. ", " Mrs. ", " Dr.",
    " No. ", " Mt. ", "Gen. ", "word", "Word", "x", "É.", " é. ", "İ. ", "3.5", "AB. ", "St.\n", "Mr.! ", "t.", "so.",
)  # fmt: skip


def _by_regex(text: str, lo: int, hi: int) -> bool:
    """The gap test sentence_ids made before: the regex search, again after each abbreviation."""
    search = taxonomy._SENTENCE_END.search
    m = search(text, lo, hi)
    while m is not None:
        i = m.start()
        if text[i] == "." and i >= 1:
            prev = text[i - 1]
            if prev.isupper():
                if i >= 2 and text[i - 2].isalpha():
                    break
            elif not (prev in "trso" and text[max(0, i - 3) : i] in taxonomy._ABBREV_TAILS):
                break
        else:
            break
        m = search(text, m.end(), hi)
    return m is not None


def test_the_scan_is_the_regex_search() -> None:
    rnd = random.Random(74)
    found = 0
    for _ in range(40_000):
        text = "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 16)))
        lo = rnd.randint(0, len(text))
        hi = rnd.randint(lo, len(text))
        want = _by_regex(text, lo, hi)
        assert taxonomy._ends_sentence_in(text, lo, hi) == want, (text, lo, hi)
        found += want
    assert 5_000 < found < 35_000
