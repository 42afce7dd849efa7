"""The ninth session's economies outside intake: the batch answer written by orjson is json.dumps's
bytes (every code point), and the language weights read from a table are np.log1p's bits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vigil_ingest import language
from vigil_ingest.api import batch_json
from vigil_ingest.intake import IntakeResult


def _reference(results: list[IntakeResult]) -> bytes:
    body = {
        "results": [r.as_dict() for r in results],
        "new": sum(r.status == "new" for r in results),
        "revisions": sum(r.status == "revision" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def test_batch_answer_is_json_dumps_bytes_for_every_code_point() -> None:
    points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    titles = ["".join(chr(c) for c in points[i : i + 64]) for i in range(0, len(points), 64)]
    results = [
        IntakeResult(
            f"al_{i:020d}", 1 + i % 3, ("new", "revision", "duplicate")[i % 3], None if i % 5 else "c", None, t
        )
        for i, t in enumerate(titles)
    ]
    assert batch_json(results) == _reference(results)


def test_a_lone_surrogate_fails_as_before() -> None:
    results = [IntakeResult("al_1", 1, "new", "c", None, "lone \ud800")]
    with pytest.raises(UnicodeEncodeError):
        batch_json(results)
    with pytest.raises(UnicodeEncodeError):
        _reference(results)


def test_log1p_table_has_np_log1p_bits() -> None:
    counts = np.arange(0, 2 * len(language._LOG1P), dtype=np.float32)
    for sample in (counts, counts[: len(language._LOG1P)], counts[1:300:7], np.array([], dtype=np.float32)):
        ours = language._log1p(sample)
        assert ours.dtype == np.float32
        assert np.array_equal(ours.view(np.uint32), np.log1p(sample).view(np.uint32))
