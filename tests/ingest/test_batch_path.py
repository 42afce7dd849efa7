"""The HTTP batch path's economies keep its behaviour: language scores equal py3langid's, the model is
loaded once, the batch registration script decides like one registration at a time (and is undone
when its answer is lost), the hand-written batch answer is the model's JSON."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from redis.asyncio import Redis
from vigil_ingest import intake, language
from vigil_ingest.api import AlertAccepted, BatchAccepted, batch_json
from vigil_ingest.cleaning import detect_language, detect_languages
from vigil_ingest.dedup import (
    Sighting,
    dedup_key,
    register,
    register_draft,
    register_drafts,
    register_many,
    unregister_many,
)
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.identity import alert_id_for
from vigil_ingest.intake import IntakeResult, accept

TEXTS = [
    "The embassy warns of possible attacks in the city centre this weekend; avoid crowds.",
    "Die Botschaft warnt vor möglichen Anschlägen in der Innenstadt von Berlin.",
    "L'ambassade met en garde contre des manifestations à Paris ce week-end.",
    "La embajada advierte de posibles ataques en el centro de Madrid este fin de semana.",
    "Посольство предупреждает о возможных терактах в Москве в эти выходные.",
    "A embaixada alerta para possíveis protestos no centro de Lisboa neste fim de semana.",
    "Ambasciata: possibili manifestazioni nel centro di Roma questo fine settimana.",
    "Büyükelçilik hafta sonu Ankara merkezinde olası gösterilere karşı uyarıyor.",
    "大使馆提醒在华公民注意安全，避免前往人群密集场所。",
    "السفارة تحذر من احتمال وقوع هجمات في وسط المدينة",
    "ALL CAPS: ROAD CLOSED BETWEEN THE BORDER AND THE AIRPORT UNTIL FURTHER NOTICE",
    "",
    "   ",
    "12345 67890 !!!",
    "short",
    "x" * 6000,
]


def test_scores_are_py3langids() -> None:
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = language.classify_many(TEXTS)
    assert ours == [
        (lang, pytest.approx(prob, abs=1e-6)) for lang, prob in (reference.classify(t) for t in TEXTS)
    ]
    # one at a time or together: the same answers
    assert [language.classify_many([t])[0] for t in TEXTS] == ours
    assert detect_languages(TEXTS) == [detect_language(t) for t in TEXTS]
    two = ["whatever the text says", "Die Botschaft warnt vor Anschlägen in Berlin."]
    assert detect_languages(two, ["fr-FR", None]) == ["fr", "de"]


def test_lockstep_walk_is_the_one_by_one_walk() -> None:
    import random
    from collections import Counter

    m = language.model()
    rnd = random.Random(5)
    texts = [t * rnd.randint(1, 12) for t in TEXTS] * 4 + ["", "a", "x" * 7000]
    rnd.shuffle(texts)
    datas = [language._encode(t) for t in texts]
    assert len(datas) >= language._LOCKSTEP_MIN
    for data, (idx, counts) in zip(datas, language._hits(m, datas), strict=True):
        visits = Counter(language._walk(m, 0, data)[1])
        assert idx.tolist() == list(visits.keys())
        assert counts.tolist() == list(visits.values())
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    assert language.classify_many(texts) == [
        (lang, pytest.approx(prob, abs=1e-6)) for lang, prob in (reference.classify(t) for t in texts)
    ]


def test_counted_is_a_counter_in_first_occurrence_order() -> None:
    import random
    from collections import Counter

    import numpy as np

    rnd = random.Random(9)
    for size in (0, 1, 2, 5, 50, 1000):
        for _ in range(20):
            values = [rnd.randint(0, max(1, size // 3)) for _ in range(size)]
            idx, counts = language._counted(np.asarray(values, dtype=np.int32))
            expected = Counter(values)
            assert idx.tolist() == list(expected.keys())
            assert counts.tolist() == list(expected.values())


def test_model_loads_once_however_many_threads_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language, "_model", None)
    before = language.loads
    barrier = threading.Barrier(4)
    seen: list[language.LanguageModel] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(language.model())

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert language.loads == before + 1
    assert len({id(m) for m in seen}) == 1


def test_model_cache_is_private_and_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(folder))
    monkeypatch.setattr(language, "_model", None)
    m = language.model()
    assert m.mapped
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert any(p.name.startswith("nextmove.") for p in folder.iterdir())
    assert [lang for lang, _ in language.classify_many(TEXTS[:2])] == ["en", "de"]
    # a second process (here: a second load) maps the same files
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped


def test_a_cache_missing_files_is_filled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(folder))
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped
    for p in folder.glob("nextmove.*"):
        p.unlink()  # a /tmp cleaner went by
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped
    assert language.classify_many(TEXTS[1:2])[0][0] == "de"


def test_a_read_only_cache_filled_beforehand_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what the container image does: extract at build time, map read-only at run time
    folder = tmp_path / "image-cache"
    folder.mkdir(mode=0o755)
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(folder))
    monkeypatch.setattr(language, "_model", None)
    assert language.model().mapped
    files = sorted(p.name for p in folder.iterdir())
    folder.chmod(0o555)
    try:
        monkeypatch.setattr(language, "_model", None)
        assert language.model().mapped
        assert sorted(p.name for p in folder.iterdir()) == files
    finally:
        folder.chmod(0o755)


def test_model_without_a_usable_cache_is_read_into_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # writable by others: not trusted
    monkeypatch.setenv("VIGIL_INGEST_LANGID_CACHE_DIR", str(shared))
    monkeypatch.setattr(language, "_model", None)
    m = language.model()
    assert not m.mapped
    assert list(shared.iterdir()) == []
    assert language.classify_many(TEXTS[1:2])[0][0] == "de"


# ---------------------------------------------------------------- dedup, one script per batch


def _draft(title: str, text: str = "Protest at the central square; avoid the area.", **kw: Any) -> AlertDraft:
    return AlertDraft(source_kind="rss", source_name="feed", issuer="Embassy", title=title, text=text, **kw)


async def test_batch_registration_decides_like_one_at_a_time(redis: Redis) -> None:
    drafts = [
        _draft("Rally in the centre", url="https://e.test/1"),
        _draft("Update: Rally in the centre", url="https://e.test/2"),  # links to the item before it
        _draft("Rally in the centre", url="https://e.test/1"),  # duplicate inside the batch
        _draft("Rally in the centre", "Changed text.", url="https://e.test/1"),  # revision 3
        _draft("Flood warning", url="https://e.test/3"),
    ]
    batch = await register_drafts(redis, drafts, ttl_s=60)
    await redis.flushdb()
    single = [await register_draft(redis, d, ttl_s=60) for d in drafts]
    strip = [(r.alert_id, r.revision, r.is_new, r.is_duplicate, r.revision_of) for r in batch]
    assert strip == [(r.alert_id, r.revision, r.is_new, r.is_duplicate, r.revision_of) for r in single]
    assert [(r.revision, r.is_duplicate) for r in batch] == [(1, False), (2, False), (1, True), (3, False), (1, False)]
    assert batch[1].alert_id == batch[0].alert_id


async def test_concurrent_batches_register_each_item_once(redis_url: str) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(20)]
    sightings = [Sighting(f"url:https://e.test/{i}", "fp") for i in range(50)]
    try:
        outcomes = await asyncio.gather(*(register_many(c, sightings, ttl_s=60) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    for i in range(50):
        assert sum(out[i].is_new for out in outcomes) == 1


async def test_registrations_are_undone_even_when_the_answer_was_lost(redis: Redis) -> None:
    await register(redis, "url:https://e.test/kept", "fp0", ttl_s=60)
    mine = [
        Sighting("url:https://e.test/kept", "fp0", "cid-dup"),  # a duplicate: not this call's
        Sighting("url:https://e.test/kept", "fp1", "cid-rev"),  # revision 2: undone
        Sighting("url:https://e.test/new", "fp", "cid-new"),  # revision 1: undone (key deleted)
    ]
    await register_many(redis, mine, ttl_s=60)  # pretend the answer never arrived
    await unregister_many(redis, mine)
    kept = await redis.hgetall(dedup_key(alert_id_for("url:https://e.test/kept")))
    assert kept[b"revision"] == b"1"
    assert b"fp:fp0" in kept
    assert b"fp:fp1" not in kept
    assert b"cid:2" not in kept
    assert await redis.exists(dedup_key(alert_id_for("url:https://e.test/new"))) == 0
    again = await register_many(redis, mine, ttl_s=60)
    assert [(r.revision, r.is_duplicate) for r in again] == [(1, True), (2, False), (1, False)]


async def test_a_lost_registration_answer_is_undone_by_accept(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    real = intake.register_many

    async def lost(*a: Any, **k: Any) -> Any:
        await real(*a, **k)
        raise ConnectionError("connection reset after the script ran")

    monkeypatch.setattr(intake, "register_many", lost)
    with pytest.raises(ConnectionError):
        await accept(redis, [_draft("A", url="https://e.test/a"), _draft("B", url="https://e.test/b")])
    monkeypatch.undo()
    results = await accept(redis, [_draft("A", url="https://e.test/a"), _draft("B", url="https://e.test/b")])
    assert [r.status for r in results] == ["new", "new"]


async def test_duplicate_answers_name_the_published_correlation_id(redis: Redis) -> None:
    [first] = await accept(redis, [_draft("A", url="https://e.test/a")])
    [dup] = await accept(redis, [_draft("A", url="https://e.test/a")])
    assert (dup.status, dup.correlation_id) == ("duplicate", first.correlation_id)


# ---------------------------------------------------------------- the batch answer


def test_batch_json_is_the_models_json_response() -> None:
    results = [
        IntakeResult("al_" + "1" * 20, 1, "new", "c1", None, "Unicode « title » — ü"),
        IntakeResult("al_" + "2" * 20, 2, "revision", "c2", "al_" + "2" * 20, ""),
        IntakeResult("al_" + "3" * 20, 1, "duplicate", None, None, 'quote " and \\ and \n newline'),
    ]
    model = BatchAccepted(
        results=[AlertAccepted(**r.as_dict()) for r in results], new=1, revisions=1, duplicates=1
    )
    assert batch_json(results) == JSONResponse(model.model_dump(mode="json")).body
    assert json.loads(batch_json(results)) == model.model_dump(mode="json")


# ---------------------------------------------------------------- text normalisation fast paths


def _normalize_text_reference(text: str) -> str:
    """normalize_text as it was written first (line by line, every regex applied)."""
    import unicodedata

    from vigil_ingest.cleaning import _BLANKS, _CONTROL, _MANY_NEWLINES

    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines = [_BLANKS.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def test_normalize_text_is_the_line_by_line_reference() -> None:
    import random

    from vigil_ingest.cleaning import normalize_text

    rnd = random.Random(7)
    alphabet = list("ab  \t\n\n\r\u00a0\u2003\u200b\x00\x85\u3000\u2028\u202fé")
    samples = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(20_000)]
    samples += [*TEXTS, "one  two", "a\n\n\n\nb", " \t lead and trail \u00a0", "x\u00a0y", "e\u0301"]
    for sample in samples:
        assert normalize_text(sample) == _normalize_text_reference(sample), repr(sample)
