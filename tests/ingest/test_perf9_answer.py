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


def test_features_of_texts_within_the_walk_are_the_one_by_one_walks() -> None:
    import random

    m = language.model()
    rnd = random.Random(7)
    words = ["embassy", "Botschaft", "ambassade", "посольство", "大使馆", "السفارة", "ROAD", "x", " ", "\n"]
    texts = ["".join(rnd.choice(words) for _ in range(rnd.randint(0, 120))) for _ in range(150)]
    texts += ["same length " * 40] * 60  # at least _LOCKSTEP_MIN texts at the longest length
    rnd.shuffle(texts)
    datas = [language._encode(t)[:480] for t in texts]
    longest = max(len(d) for d in datas)
    assert sum(len(d) == longest for d in datas) >= language._LOCKSTEP_MIN
    features, text_of = language._features(m, datas)
    expected = [np.asarray(language._walk(m, 0, d)[1], dtype=np.int32) for d in datas]
    assert features.dtype == np.int32
    assert text_of.dtype == np.int64
    assert np.array_equal(features, np.concatenate(expected))
    assert np.array_equal(text_of, np.repeat(np.arange(len(datas)), [len(e) for e in expected]))
    # and the scores: the same as one text at a time
    samples = [d.decode("utf-8", "ignore") for d in datas]
    assert language.classify_many(samples) == [language.classify_many([s])[0] for s in samples]


def test_scores_are_py3langids_bit_for_bit() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    from vigil_shared.bench import make_texts

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    openings = [f"{t}\n{x}"[:512] for t, x in make_texts(200, seed=2)]  # one length: the at-once read
    mixed = openings[:100] + [t[: 40 + 7 * i] for i, t in enumerate(openings[100:])]  # per-text finishing
    mixed += ["Die Botschaft warnt vor möglichen Anschlägen in Berlin.", "大使馆提醒在华公民注意安全", "x" * 900]
    for texts in (openings, mixed):
        assert language.classify_many(texts) == [reference.classify(t) for t in texts]
