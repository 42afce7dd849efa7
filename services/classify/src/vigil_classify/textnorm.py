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
