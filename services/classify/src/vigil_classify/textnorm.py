"""Length-preserving text normalisation shared by the gazetteer and the taxonomy matchers.

Both matchers run one Aho-Corasick pass over a *normalised* copy of the text in which every
character keeps its position: letters are lower-cased and stripped of accents (``ş`` -> ``s``),
everything that is not a letter or digit becomes a space. Keys are normalised the same way and
padded with one space on each side, so a hit is always on word boundaries and its offsets index
straight back into the original text (shifted by the one padding space).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import TypeVar

_ASCII_MAP = bytes(
    (c + 32 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else 32
    for c in range(256)
)


@lru_cache(maxsize=1)
def _unicode_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x80, 0x2500):
        ch = chr(code)
        low = ch.lower()
        if len(low) != 1:
            low = ch
        if low.isalnum():
            base = unicodedata.normalize("NFKD", low)[:1]
            if base.isascii() and base.isalnum():
                low = base.lower()
            table[code] = low
        else:
            table[code] = " "
    for code in range(0x80):
        table[code] = chr(_ASCII_MAP[code])
    table[ord("ı")] = "i"
    table[ord("ß")] = "s"
    return table


def normalise(text: str) -> str:
    """Lower-case, fold accents, map non-alphanumerics to spaces; ``len(result) == len(text)``."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_MAP).decode("ascii")
    out = text.translate(_unicode_table())
    if len(out) == len(text):
        return out
    # A mapping produced more than one character: rebuild character by character.
    table = _unicode_table()
    return "".join((m if len(m := table.get(ord(c), c.lower())) == 1 else " ") for c in text)


def padded(text: str) -> str:
    """``" " + normalise(text) + " "``: what the automata iterate over."""
    return f" {normalise(text)} "


def key(phrase: str) -> str:
    """The padded automaton key for a phrase (``"St. Petersburg"`` -> ``" st  petersburg "``)."""
    return padded(phrase.strip())


_T = TypeVar("_T")


def sort_hits(hits: list[tuple[int, int, _T]]) -> None:
    """``hits.sort()`` for automaton hits ``(start, -length, value)``, in place.

    The automaton reports hits by end offset, so they come nearly sorted by start (a longer key out
    of order only among the hits it overlaps): an insertion sort on the two ints moves those few,
    where ``list.sort`` compares tuples through the generic rich comparison. Two hits with the same
    ``(start, -length)`` (the same key at the same place, which the automaton never reports twice)
    would be ordered by their values: then, and after too many moves, ``list.sort`` does it.
    """
    budget = 4 * len(hits)
    for i in range(1, len(hits)):
        cur = hits[i]
        start, neg_len, _value = cur
        prev = hits[i - 1]
        if prev[0] < start or (prev[0] == start and prev[1] < neg_len):
            continue  # in order
        j = i - 1
        while j >= 0:
            other = hits[j]
            if other[0] < start or (other[0] == start and other[1] < neg_len):
                break
            if other[0] == start and other[1] == neg_len:
                hits[j + 1] = cur  # (fills the gap the moves left: the list is whole again)
                hits.sort()  # equal keys: the values decide
                return
            hits[j + 1] = other
            j -= 1
            budget -= 1
        hits[j + 1] = cur
        if budget < 0:
            hits.sort()
            return
