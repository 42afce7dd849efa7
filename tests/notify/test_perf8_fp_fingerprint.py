"""content_fingerprint's ASCII path (pairs of spaces marked by a NUL, then deleted) against the code
it replaced (the "  " -> " " replace loop) and against the regex reference: fingerprints are stored
Redis keys, so they must be bit-identical on every input."""

from __future__ import annotations

import hashlib
import random

from vigil_notify.delivery import _ASCII_NORM, _normalise_regex, content_fingerprint
from vigil_shared.bench import make_texts


def _replaced(title: str, text: str) -> str:
    """The implementation before perf8-fingerprint (its ASCII path; the other path is unchanged)."""
    raw = f"{title}\n{text}"
    if raw.isascii():
        norm = raw.encode().translate(_ASCII_NORM).replace(b"  ", b" ")
        while norm.find(b"  ") != -1:
            norm = norm.replace(b"  ", b" ")
        norm = norm.strip(b" ")
    else:
        norm = " ".join(raw.casefold().split()).encode()  # (not reached: ASCII cases only)
    return hashlib.sha256(norm).hexdigest()[:24]


def _reference(title: str, text: str) -> str:
    return hashlib.sha256(_normalise_regex(f"{title}\n{text}").encode()).hexdigest()[:24]


def _check(title: str, text: str) -> None:
    got = content_fingerprint(title, text)
    assert got == _reference(title, text), (title[:40], text[:40])
    if f"{title}\n{text}".isascii():
        assert got == _replaced(title, text), (title[:40], text[:40])


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
