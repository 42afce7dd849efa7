"""Language scoring by chunks: the chunk-wide feature counting is the per-text ``Counter``, and
chunk boundaries change no score (each text scores as py3langid scores it alone)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from vigil_ingest import language

SENTENCES = [
    "The embassy warns of possible attacks in the city centre this weekend; avoid crowds.",
    "Die Botschaft warnt vor möglichen Anschlägen in der Innenstadt von Berlin.",
    "L'ambassade met en garde contre des manifestations à Paris ce week-end.",
    "Посольство предупреждает о возможных терактах в Москве в эти выходные.",
    "大使馆提醒在华公民注意安全，避免前往人群密集场所。",
    "12345 67890 !!!",
    "",
]


def test_counting_a_chunk_is_counting_each_text() -> None:
    rnd = random.Random(3)
    for _ in range(200):
        texts = [[rnd.randint(0, 30) for _ in range(rnd.choice((0, 0, 1, 2, 7, 40)))] for _ in range(rnd.randint(1, 9))]
        flat = np.asarray([f for t in texts for f in t], dtype=np.int32)
        text_of = np.repeat(np.arange(len(texts), dtype=np.int64), [len(t) for t in texts])
        counted = language._counted_many(flat, text_of, len(texts))
        bounds = counted.bounds.tolist()
        assert len(bounds) == len(texts) + 1
        for k, text in enumerate(texts):
            expected = Counter(text)
            assert counted.features[bounds[k] : bounds[k + 1]].tolist() == list(expected.keys())
            assert counted.counts[bounds[k] : bounds[k + 1]].tolist() == list(expected.values())


def test_chunks_cover_every_text_once_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language, "_CHUNK_BYTES", 1000)
    monkeypatch.setattr(language, "_CHUNK_TEXTS", 6)
    rnd = random.Random(4)
    lengths = [rnd.choice((0, 5, 90, 400, 1500)) for _ in range(300)]
    chunks = language._chunks(lengths)
    assert [i for a, b in chunks for i in range(a, b)] == list(range(len(lengths)))
    for a, b in chunks:
        assert b - a <= 6
        assert b - a == 1 or (b - a) * max(lengths[a:b]) <= 1000


def test_scores_do_not_depend_on_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(6)
    texts = [" ".join(rnd.choice(SENTENCES) for _ in range(rnd.randint(0, 8))) for _ in range(160)]
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    expected = [reference.classify(t) for t in texts]
    whole = language.classify_many(texts)
    assert whole == [(lang, pytest.approx(prob, abs=1e-6)) for lang, prob in expected]
    monkeypatch.setattr(language, "_CHUNK_BYTES", 20_000)  # many chunks, some below the lockstep size
    assert len(language._chunks([len(language._encode(t)) for t in texts])) > 3
    assert language.classify_many(texts) == whole
