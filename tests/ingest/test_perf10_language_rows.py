"""The language model's large arrays are read row by row as texts first reach them (session 10): the
walks, features and scores are those of the whole model, whatever rows were read before and in
whichever path (lockstep, lockstep then one by one, one by one), from any number of threads; the
cache's arrays are not mapped, and only the rows reached are held."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from vigil_ingest import language

WORDS = [
    "embassy", "warns", "attacks", "Botschaft", "warnt", "Anschlägen", "ambassade", "manifestations",
    "посольство", "предупреждает", "大使馆", "提醒", "السفارة", "تحذر", "Büyükelçilik", "uyarıyor",
    "embajada", "advierte", "ROAD", "CLOSED", "12345", "!!!", " ", "\n", "é", "ß",
]  # fmt: skip


def _texts(seed: int, count: int, longest: int) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, longest))) for _ in range(count)]


@pytest.fixture
def fresh_model(monkeypatch: pytest.MonkeyPatch) -> language.LanguageModel:
    """A model just loaded (only the start state's row read), as the process's model."""
    monkeypatch.setattr(language, "_model", None)
    return language.model()


@pytest.fixture(scope="module")
def whole_model() -> language.LanguageModel:
    """A model with every DFA and feature row read: the reference walk."""
    m = language._load()
    language._read_states(m, np.arange(m.trap, dtype=np.int64))
    m.ptc.slots(np.arange(m.ptc.shape[0], dtype=np.int64))
    assert m.moves.used == m.moves.shape[0] + 1
    assert m.ptc.used == m.ptc.shape[0]
    return m


def _same_features(m: language.LanguageModel, whole: language.LanguageModel, datas: list[bytes]) -> None:
    features, text_of = language._features(m, datas)
    expected, expected_of = language._features(whole, datas)
    assert features.dtype == expected.dtype == np.int32
    assert np.array_equal(features, expected)
    assert np.array_equal(text_of, expected_of)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walks_from_a_fresh_model_are_the_whole_models(
    fresh_model: language.LanguageModel, whole_model: language.LanguageModel, seed: int
) -> None:
    m = fresh_model
    assert m.moves.used == 2  # the trap row and the start state's row
    # every path, each time reaching rows not read yet: texts within the lockstep walk (cut at one
    # length), longer ones finished one by one, and small batches walked one by one
    cut = [language._encode(t)[:300] for t in _texts(seed, 120, 80)]
    _same_features(m, whole_model, cut)
    mixed = [language._encode(t) for t in _texts(seed + 10, 90, 150)]
    _same_features(m, whole_model, mixed)
    few = [language._encode(t) for t in _texts(seed + 20, 7, 60)]
    _same_features(m, whole_model, few)
    for data in few:
        assert language._walk(m, 0, data)[1] == language._walk(whole_model, 0, data)[1]
    # and after all that, rows it had not needed yet (other languages) are read as reached again
    rnd = random.Random(seed)
    late = [
        language._encode("".join(rnd.choice("ابتثجحخدذرزسشصضطظعغفقكلمنهوي ") for _ in range(200))) for _ in range(60)
    ]
    _same_features(m, whole_model, late)
    assert 2 < m.moves.used < m.moves.shape[0] // 2


def test_rows_read_partly_before_a_chunk(whole_model: language.LanguageModel) -> None:
    """A chunk walked with a random part of the rows read already: every text trapped at some step
    goes on from there; the features are the whole model's."""
    rnd = random.Random(11)
    for _ in range(6):
        m = language._load()
        some = np.asarray(rnd.sample(range(m.trap), m.trap // rnd.choice((3, 10, 50))), dtype=np.int64)
        language._read_states(m, some)
        _same_features(m, whole_model, [language._encode(t)[:200] for t in _texts(rnd.randint(0, 999), 64, 60)])
        _same_features(m, whole_model, [language._encode(t) for t in _texts(rnd.randint(0, 999), 64, 90)])


def test_scores_from_a_fresh_model_are_py3langids(fresh_model: language.LanguageModel) -> None:
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    texts = _texts(5, 200, 60)
    ours: list[Any] = language.classify_many(texts)
    assert ours == [(lang, pytest.approx(prob, abs=1e-6)) for lang, prob in (reference.classify(t) for t in texts)]
    # the same texts again, every row read now: the same answers
    assert language.classify_many(texts) == language.classify_many(list(reversed(texts)))[::-1]


def test_threads_reading_rows_at_once_agree(
    fresh_model: language.LanguageModel, whole_model: language.LanguageModel
) -> None:
    batches = [[language._encode(t)[:250] for t in _texts(100 + i, 80, 70)] for i in range(6)]
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    barrier = threading.Barrier(len(batches))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = language._features(fresh_model, batches[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, datas in enumerate(batches):
        expected = language._features(whole_model, datas)
        assert np.array_equal(results[i][0], expected[0])
        assert np.array_equal(results[i][1], expected[1])
    # each row was read once: its slot is unique
    used = fresh_model.moves.slot[fresh_model.moves.slot >= 0]
    assert len(np.unique(used)) == len(used) == fresh_model.moves.used - 1


def _mapped_model_files() -> list[str]:
    return [line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if ".npy" in line]


def test_the_cache_is_read_not_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The arrays' files are read row by row (a mapping's page faults bring in the 16 pages around
    every row touched: ~30 MB resident for ~3 MB of rows reached); only the rows reached are held."""
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(language, "_model", None)
    m = language.model()
    assert m.mapped
    assert [lang for lang, _ in language.classify_many(["The embassy warns of attacks in the city centre."] * 60)] == [
        "en"
    ] * 60
    assert _mapped_model_files() == []
    assert m.moves.used < 2_000
    assert m.ptc.used < 2_000


def test_a_truncated_cache_file_is_extracted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(folder))
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped
    for p in folder.glob("ptc.*.npy"):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # a partial copy
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped
    assert language.classify_many(["Die Botschaft warnt vor möglichen Anschlägen in Berlin."])[0][0] == "de"
