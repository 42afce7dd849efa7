"""content_fingerprint's ASCII path (pairs of spaces marked by a NUL, then deleted) against the code
it replaced (the "  " -> " " replace loop) and against the regex reference: fingerprints are stored
Redis keys, so they must be bit-identical on every input."""

from __future__ import annotations

import hashlib
import random

from vigil_notify.delivery import (
    _ASCII_NORM,
    _OTHER_NORM,
    _OTHER_NORM_MAX,
    _PUNCT_TO_SPACE,
    _normalise_mixed,
    _normalise_regex,
    content_fingerprint,
)
from vigil_shared.bench import make_texts


def _replaced(title: str, text: str) -> str:
    """The implementation before perf8-fingerprint."""
    raw = f"{title}\n{text}"
    if raw.isascii():
        norm = raw.encode().translate(_ASCII_NORM).replace(b"  ", b" ")
        while norm.find(b"  ") != -1:
            norm = norm.replace(b"  ", b" ")
        norm = norm.strip(b" ")
    else:
        norm = " ".join(raw.casefold().translate(_PUNCT_TO_SPACE).split()).encode()
    return hashlib.sha256(norm).hexdigest()[:24]


def _reference(title: str, text: str) -> str:
    return hashlib.sha256(_normalise_regex(f"{title}\n{text}").encode()).hexdigest()[:24]


def _check(title: str, text: str) -> None:
    got = content_fingerprint(title, text)
    assert got == _reference(title, text), (title[:40], text[:40])
    assert got == _replaced(title, text), (title[:40], text[:40])
    raw = f"{title}\n{text}"
    if not raw.isascii():
        mixed = _normalise_mixed(raw)
        assert mixed is None or mixed == _normalise_regex(raw).encode(), (title[:40], text[:40])


def test_every_ascii_character_alone_in_pairs_and_in_runs() -> None:
    for c in range(128):
        ch = chr(c)
        for n in range(0, 12):
            _check(ch * n, f"a{ch * n}b {ch * n}c{ch}")
            _check("", f"{ch * n}x{ch}{' ' * n}y{ch * n}")
            _check(f"{ch}{' ' * n}", f"{' ' * n}{ch}")


def test_runs_of_every_length_and_mix() -> None:
    seps = [" ", "\t", "\n", ".", ",", ";", ":", "-", "!", "(", ")", "\x00", "\x1f", "\x7f", "'"]
    for n in range(0, 40):
        for sep in seps:
            _check("T", f"a{sep * n}b")
            _check(sep * n, f"{sep * n}")
            _check(f"x{sep * n}", f"{sep * n}y{sep * (n + 1)}z{sep * (n + 2)}")
        _check("", "".join(seps) * n)


def test_random_ascii_texts() -> None:
    rng = random.Random(8)
    alphabet = [chr(c) for c in range(128)]
    heavy = list(" .,;:\n\t-!?()\x00") + list("abcXYZ019_")
    for i in range(4000):
        pool = heavy if i % 2 else alphabet
        title = "".join(rng.choices(pool, k=rng.randrange(0, 60)))
        text = "".join(rng.choices(pool, k=rng.randrange(0, 1500)))
        _check(title, text)


def test_random_texts_with_other_code_points() -> None:
    rng = random.Random(9)
    pool = [chr(c) for c in (*range(128), 0xA0, 0xE9, 0x2014, 0x201C, 0x201D, 0x3000, 0x130, 0xDF, 0xFB01)]
    for _ in range(500):
        _check("".join(rng.choices(pool, k=rng.randrange(0, 40))), "".join(rng.choices(pool, k=rng.randrange(0, 600))))


def test_every_code_point() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for i in range(0, len(every), 9000):
        _check(every[i : i + 4000], every[i + 4000 : i + 9000])
    for c in range(0, 0x110000, 97):
        if not 0xD800 <= c <= 0xDFFF:
            _check(chr(c), f"a{chr(c)}  {chr(c)}b")


def test_the_benchmark_texts() -> None:
    for title, text in make_texts(2000):
        _check(title, text)


# a few non-ASCII characters in ASCII text: quote marks, dashes, accents, letters whose casefold is
# longer or ASCII (ß, ẞ, İ, ſ, the Kelvin sign, ligatures), final sigma, other whitespace (no-break,
# ideographic, line separator, NEL), combining marks, digits of other scripts, CJK, emoji, a title-case
# digraph, a modifier letter, a character whose casefold holds combining marks (ΐ)
_FEW = list("\u2019\u201c\u201d\u2014\u2013\u00e9\u00c9\u00df\u1e9e\u0130\u0131\u017f\u212a\u03a3\u03c2\u03c3\ufb01")
_FEW += list("\u00a0\u3000\u2028\x85\u0301\u0663\u6771\U0001f600\u01c5\u02bc\u0390\u0149\u00b2\u2166\uff21")


def test_a_few_other_characters_take_the_bytes_path() -> None:
    for ch in _FEW:
        for title, text in (("T", f"a{ch}b"), (ch, f" {ch} x{ch}{ch}y. {ch}"), (f"{ch}Alert", f"z{ch}")):
            _check(title, text)
    assert _normalise_mixed("Kyiv: \u201cstrikes\u201d on the city\u2019s trains \u2014 caf\u00e9") is not None
    assert _normalise_mixed("Stra\u00dfe \u0130stanbul \u212a \u03a3\u039f\u03a3") is not None


def test_random_ascii_texts_with_a_few_other_characters() -> None:
    rng = random.Random(10)
    ascii_pool = list(" .,;:\n\t-!?()\x00") + list("abcXYZ019_") * 3
    taken = 0
    for _ in range(3000):
        extra = rng.sample(_FEW, rng.randrange(1, 10))
        pool = ascii_pool + extra
        title = "".join(rng.choices(pool, k=rng.randrange(0, 40)))
        text = "".join(rng.choices(ascii_pool, k=rng.randrange(0, 900)))
        cut = sorted(rng.randrange(0, len(text) + 1) for _ in range(rng.randrange(0, 6)))
        text = "".join(text[a:b] + rng.choice(extra) for a, b in zip([0, *cut], [*cut, len(text)], strict=True))
        _check(title, text)
        taken += _normalise_mixed(f"{title}\n{text}") is not None
    assert taken > 2000  # (most of them: the bytes path is what is tested here)


def test_every_code_point_in_ascii_text() -> None:
    """Every code point, four at a time in ASCII text (each distinct: the bytes path or, for the
    characters it leaves to it, the str path)."""
    codes = [c for c in range(128, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    taken = 0
    for i in range(0, len(codes), 4):
        chars = [chr(c) for c in codes[i : i + 4]]
        raw = f"Alert {chars[0]}x\nA{chars[-1]}{''.join(chars)}. b {' '.join(chars)} END{chars[0]}"
        norm = _normalise_mixed(raw)
        assert norm is None or norm == _normalise_regex(raw).encode(), [hex(ord(c)) for c in chars]
        taken += norm is not None
    assert taken == (len(codes) + 3) // 4  # (every one by the bytes path: none left to the str path)
    assert len(_OTHER_NORM) <= _OTHER_NORM_MAX


def test_the_character_cache_is_bounded_and_refilled() -> None:
    _OTHER_NORM.clear()
    for c in range(0x4E00, 0x4E00 + _OTHER_NORM_MAX + 10):
        _check("", f"x{chr(c)}\u00c9 y")
    assert 0 < len(_OTHER_NORM) <= _OTHER_NORM_MAX
    _check("\u00c9T\u00c9", "\u00df \u2019")
