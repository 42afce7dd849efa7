"""The ninth session's cheaper identity keeps its answers: an id without a colon is not an absolute
URL, which is urlsplit's answer, on random strings."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

from vigil_ingest import identity


def _urlsplit_answer(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def test_absolute_url_answers_are_urlsplits() -> None:
    rnd = random.Random(1)
    pool = [*"ab:/[]@?#%. \t\nhtps0123456789", "http", "https", "//", "[::1]", "\u00e9", "HTTP"]
    values = ["bench-0000001", "guid-1", "", "http://x.test", "https:x", "urn:uuid:1", "[::1]"]
    values += ["".join(rnd.choice(pool) for _ in range(rnd.randint(0, 14))) for _ in range(50_000)]
    for value in values:
        assert identity._is_absolute_url(value) == _urlsplit_answer(value), value
