"""The ASCII fast paths of text cleaning and identity are the general code's results exactly."""

from __future__ import annotations

import random
import re
import unicodedata

from vigil_ingest.cleaning import (
    _CONTROL,
    _HTML_HINT,
    _ODD_BLANK,
    collapse_whitespace,
    looks_like_html,
    normalize_inline,
    normalize_text,
)
from vigil_ingest.identity import normalize_for_hash

# every ASCII control and blank, a few letters and markup characters, and some non-ASCII blanks
ALPHABET = [chr(c) for c in range(0x00, 0x21)] + list("ab  <>&;#p\x7f") + ["\u00a0", "\u2003", "é", "\x85"]


def _samples(seed: int, count: int, ascii_only: bool) -> list[str]:
    rnd = random.Random(seed)
    alphabet = [c for c in ALPHABET if c.isascii()] if ascii_only else ALPHABET
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))) for _ in range(count)]


def _normalize_text_general(text: str) -> str:
    """normalize_text without its ASCII branch."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    if "  " in text or _ODD_BLANK.search(text) is not None:
        text = re.sub(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+", " ", text)
    text = "\n".join([line.strip() for line in text.split("\n")])
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def test_normalize_text_ascii_path_is_the_general_path() -> None:
    samples = _samples(1, 20_000, ascii_only=True) + _samples(2, 5_000, ascii_only=False)
    samples += ["plain words", "tab\there", "bell\x07", "del\x7f", "  lead", "a  b", "x\x1fy\x1cz"]
    for sample in samples:
        assert normalize_text(sample) == _normalize_text_general(sample), repr(sample)
        assert normalize_inline(sample) == " ".join(_normalize_text_general(sample).split()), repr(sample)


def test_html_hint_precheck_is_the_regex() -> None:
    samples = [*_samples(3, 20_000, ascii_only=False), "<p>x</p>", "a &amp; b", "<", "&", "x < y & z", "no markup"]
    for sample in samples:
        assert looks_like_html(sample) == (_HTML_HINT.search(sample) is not None), repr(sample)


def test_collapse_whitespace_is_split_and_join() -> None:
    samples = _samples(4, 20_000, ascii_only=True) + _samples(5, 5_000, ascii_only=False)
    samples += ["", " ", "a", " a  b\t\nc ", "\x1c\x1d\x1e\x1fa\x0b\x0cb", "a" + " " * 9 + "b"]
    for sample in samples:
        assert collapse_whitespace(sample) == " ".join(sample.split()), repr(sample)
        assert normalize_for_hash(sample) == " ".join(unicodedata.normalize("NFKC", sample).casefold().split())
