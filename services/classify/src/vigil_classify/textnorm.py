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
from typing import Any, Final, TypeVar

_ASCII_MAP: Final = bytes(
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



AutomatonHit = tuple[Any, ...]
"""A hit as the automata yield it, ``(end, value)``: the end offset (inclusive) of the key in the
padded text and the key's value ``(length, ...)``; the key starts at ``end - length + 1``. Typed as a
plain tuple so that the compiled build keeps the automaton's own tuple objects (a fixed-length tuple
type would be unpacked, and packed again into new tuples when stored)."""


def _hit_order(hit: AutomatonHit) -> tuple[int, int]:
    value: tuple[Any, ...] = hit[1]
    n: int = value[0]
    end: int = hit[0]
    return end - n, -n


def sort_automaton_hits(hits: list[AutomatonHit]) -> None:
    """Order automaton hits ``(end, (length, ...))`` as :func:`sort_hits` orders ``(start, -length,
    value)``, in place: by start, then the longest first, keeping the hits themselves (no tuple and
    no int objects made per hit). Two hits with the same start and length are the same key at the
    same place (equal values), so their order is immaterial; then, and after too many moves,
    ``list.sort`` on that order does it."""
    if not hits:
        return
    budget = 4 * len(hits)
    # (start - 1, length) of hits[i - 1], the greatest of hits[:i] once those are in order
    value: tuple[Any, ...] = hits[0][1]
    pn: int = value[0]
    pe: int = hits[0][0]
    ps = pe - pn
    for i in range(1, len(hits)):
        cur = hits[i]
        value = cur[1]
        n: int = value[0]
        end: int = cur[0]
        start = end - n  # (start - 1: only compared with others made the same way)
        if ps < start or (ps == start and pn > n):
            ps = start  # in order: the greatest so far
            pn = n
            continue
        j = i - 1
        while j >= 0:
            other = hits[j]
            value = other[1]
            on: int = value[0]
            oe: int = other[0]
            os_ = oe - on
            if os_ < start or (os_ == start and on > n):
                break
            if os_ == start and on == n:
                hits[j + 1] = cur  # (fills the gap the moves left: the list is whole again)
                hits.sort(key=_hit_order)
                return
            hits[j + 1] = other
            j -= 1
            budget -= 1
        hits[j + 1] = cur  # (hits[i] is now the one that was hits[i - 1]: still the greatest)
        if budget < 0:
            hits.sort(key=_hit_order)
            return
