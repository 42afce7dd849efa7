"""Language identification with py3langid's model, loaded once and lean in memory and CPU.

Scores are py3langid's (``LanguageIdentifier(norm_probs=True).classify``): the same byte DFA walk,
the same naive Bayes sums in float32 in the same order, the same length-scaled softmax and the same
folding of aliased labels; only how the model is held and how the sums are computed differ:

* **Loaded once per process, on first use, by one thread** (:func:`model`). The HTTP API parses
  bodies in worker threads: without the lock, two batches in flight loaded the model twice at once
  (~100 MB each while loading, ~1 CPU-second each).
* **Memory-mapped, not copied.** The first load extracts the model's arrays (``.npy`` members of
  py3langid's ``model.npz.xz``) into a cache directory (``VIGIL_INGEST_LANGID_CACHE_DIR``, default
  ``<tmp>/vigil-langid-<uid>``, created 0700; one others can write to is refused) and maps them
  read-only: only the pages the texts actually reach are resident (English alerts touch ~15 of the
  66 MB), and every replica on a host shares one copy in the page cache. The container image ships
  the extracted arrays (``/app/langid-cache``, read-only). Without a usable cache directory the
  arrays are read into memory instead (66 MB, no transient copies).
* **Batch scoring** (:func:`classify_many`): the model's per-feature table is float16, and
  converting the rows a text hits to float32 (what ``numpy`` does inside py3langid's ``@``) cost
  more than the whole rest of the scoring. The rows hit by a batch of texts are converted once,
  then each text's sum is an ordinary float32 BLAS product over those rows.
* **Whole chunks at once** (up to ~1 MB of text): the texts' DFA walks run in lockstep (three numpy
  calls per byte position for all of them), and the per-text ``Counter`` of features (distinct
  features in order of first occurrence, which fixes the order of py3langid's sum) is one sort of
  position-tagged keys for the whole chunk (:func:`_counted_many`), not a dozen calls per text.
  The per-text product keeps py3langid's terms in py3langid's order, so scores stay bit for bit.
"""

from __future__ import annotations

import hashlib
import lzma
import math
import os
import shutil
import stat
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger("vigil.ingest.language")

_MEMBERS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
_MAPPED = ("ptc", "nextmove")
"""The two large arrays (27 + 39 MB); the others are small and read into memory."""
_COMPLETE = "complete"


@dataclass(frozen=True)
class LanguageModel:
    """py3langid's model in the form the walk and the scoring use."""

    nextmove: Any
    """DFA transitions (state row << 8 | byte -> next state), uint32, indexable (memoryview)."""
    rowbase: list[int]
    """Per state: the offset of its row in ``nextmove`` (a list: its ints exist once, the walk
    indexing it allocates nothing)."""
    out: list[int]
    """Per state: the feature row it emits, or -1."""
    nextmove_array: np.ndarray[Any, Any]
    """``nextmove`` as an array, ``rowbase`` and ``out`` as arrays: for the walk in lockstep."""
    rowbase_array: np.ndarray[Any, Any]
    out_array: np.ndarray[Any, Any]
    ptc: np.ndarray[Any, Any]
    """Per feature row: log P(feature | language), float16, (features, languages)."""
    pc: np.ndarray[Any, Any]
    """log P(language), float32."""
    classes: list[str]
    alias_pairs: tuple[tuple[int, int], ...]
    """(first, duplicate) columns of labels the model lists twice (script aliases)."""
    mapped: bool
    """Whether the large arrays are memory-mapped from the cache (else in memory)."""


_lock = threading.Lock()
_model: LanguageModel | None = None
loads = 0
"""How many times this process loaded the model (tests check it is loaded once)."""


def model() -> LanguageModel:
    """The process's model, loaded on first use (one thread loads, concurrent callers wait)."""
    global _model, loads
    current = _model
    if current is not None:
        return current
    with _lock:
        if _model is None:
            _model = _load()
            loads += 1
        return _model


def _model_file() -> Path:
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    return Path(str(MODEL_DIR)) / str(MODEL_FILE)


def cache_dir() -> Path:
    configured = os.environ.get("VIGIL_INGEST_LANGID_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"vigil-langid-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _trusted_dir(path: Path) -> bool:
    """Create ``path`` (0700) if needed; whether only this user (or root) can write to it.

    A directory others can write to is never used: they could swap the arrays under us. A
    read-only one root filled (a container image's) is used as it is.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or (st.st_mode & 0o022):
        return False
    return not hasattr(os, "getuid") or st.st_uid in (0, os.getuid())


def _extract_npz(source: Path, into: Path, suffix: str) -> None:
    """Stream the xz-compressed npz's members into ``into`` as ``<member><suffix>`` (.npy files)."""
    with tempfile.TemporaryFile(dir=into) as tmp:
        with lzma.open(source) as src:
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.seek(0)
        with zipfile.ZipFile(tmp) as npz:
            for name in _MEMBERS:
                part = into / f"{name}{suffix}.part{os.getpid()}"
                with npz.open(f"{name}.npy") as member, open(part, "wb") as out:
                    shutil.copyfileobj(member, out, 1 << 20)
                os.replace(part, into / f"{name}{suffix}")


def _cache_key(source: Path) -> str:
    """The model file's content hash (not its path or mtime: an image's cache survives COPY)."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def _arrays_from_cache() -> dict[str, np.ndarray[Any, Any]] | None:
    source = _model_file()
    folder = cache_dir()
    if not _trusted_dir(folder):
        return None
    suffix = f".{_cache_key(source)}.npy"
    marker = folder / f"{_COMPLETE}{suffix}"
    for attempt in (1, 2):
        try:
            if not marker.exists():
                _extract_npz(source, folder, suffix)
                marker.touch()
            return {
                name: np.load(folder / f"{name}{suffix}", mmap_mode="r" if name in _MAPPED else None)
                for name in _MEMBERS
            }
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            # e.g. a /tmp cleaner removed some of the files: extract them again, once
            if attempt == 1 and marker.exists() and os.access(folder, os.W_OK):
                marker.unlink(missing_ok=True)
                continue
            log.warning("language model cache unusable; loading into memory", folder=str(folder), error=str(exc))
    return None


def _arrays_in_memory() -> dict[str, np.ndarray[Any, Any]]:
    with tempfile.TemporaryFile() as tmp:
        with lzma.open(_model_file()) as src:
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.seek(0)
        with np.load(tmp, allow_pickle=False) as data:
            return {name: data[name] for name in _MEMBERS}


def _load() -> LanguageModel:
    arrays = _arrays_from_cache()
    mapped = arrays is not None
    if arrays is None:
        arrays = _arrays_in_memory()
    nextmove = np.ascontiguousarray(arrays["nextmove"])
    if nextmove.dtype != np.uint32 and nextmove.dtype != np.uint16:
        nextmove = nextmove.astype(np.uint32)
    rows = np.asarray(arrays["nextmove_row"]).astype(np.int64)
    out = np.asarray(arrays["out_feat"]).astype(np.int32)
    ptc = arrays["ptc"]
    if ptc.ndim != 2 or len(out) != len(rows) or nextmove.size % 256:
        raise ValueError("unexpected py3langid model layout")
    classes = [str(c) for c in np.asarray(arrays["classes"]).tolist()]
    first: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for i, c in enumerate(classes):
        if c in first:
            pairs.append((first[c], i))
        else:
            first[c] = i
    return LanguageModel(
        nextmove=memoryview(nextmove.data),
        rowbase=(rows << 8).tolist(),
        out=out.tolist(),
        nextmove_array=np.asarray(nextmove),  # a plain ndarray view (memmap indexing is slower)
        rowbase_array=rows << 8,
        out_array=out,
        ptc=ptc,
        pc=np.asarray(arrays["pc"], dtype=np.float32),
        classes=classes,
        alias_pairs=tuple(pairs),
        mapped=mapped,
    )


def _encode(text: str) -> bytes:
    """py3langid's input normalisation: all-caps text lowered, NFC, UTF-8."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


def _walk(m: LanguageModel, s: int, data: bytes) -> tuple[int, list[int]]:
    """The DFA walk over ``data`` from state ``s``: the end state and the features emitted, in order."""
    nm, rb, out = m.nextmove, m.rowbase, m.out
    return s, [f for b in data if (f := out[(s := nm[rb[s] + b])]) >= 0]


def _counted(features: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Distinct features in order of first occurrence, and their counts (as a ``Counter`` has them):
    :func:`_counted_many` of one text."""
    counted = _counted_many(features, np.zeros(len(features), dtype=np.int64), 1)
    return counted.features, counted.counts


@dataclass(frozen=True)
class _Counted:
    """Per text of a chunk, its distinct features in order of first occurrence and their counts:
    text ``k``'s are ``features[bounds[k]:bounds[k + 1]]`` (and the same slice of ``counts``)."""

    features: np.ndarray[Any, Any]
    counts: np.ndarray[Any, Any]
    bounds: np.ndarray[Any, Any]


def _counted_many(features: np.ndarray[Any, Any], text_of: np.ndarray[Any, Any], n_texts: int) -> _Counted:
    """:func:`_counted` of every text of a chunk at once, in a constant number of numpy calls.

    ``features`` are all the texts' features, text after text and in order within each
    (``text_of``: the text of each, non-decreasing). One position-tagged key per feature
    (text, feature, position) is sorted: each run of one (text, feature) starts at its first
    occurrence and its length is the count. The runs' first positions then put them back in text
    order and, within a text, in order of first occurrence (a scatter, not a second sort).
    """
    n = len(features)
    if n == 0:
        return _Counted(
            np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32), np.zeros(n_texts + 1, dtype=np.intp)
        )
    shift = max(1, (n - 1).bit_length())  # positions take the key's low bits: shifts, no divisions
    key = text_of.astype(np.int64)
    key *= int(features.max()) + 1
    key += features
    key <<= shift
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    group = key >> shift
    starts_run = np.empty(n, dtype=bool)
    starts_run[0] = True
    np.not_equal(group[1:], group[:-1], out=starts_run[1:])
    del group
    starts = np.flatnonzero(starts_run)
    first = key[starts]  # the position of each (text, feature)'s first occurrence
    first &= (1 << shift) - 1
    del key
    lengths = np.empty(len(starts), dtype=np.float32)
    np.subtract(np.append(starts[1:], n), starts, out=lengths, casting="unsafe")
    count_at = np.zeros(n, dtype=np.float32)
    count_at[first] = lengths
    in_order = np.zeros(n, dtype=bool)
    in_order[first] = True
    where = np.flatnonzero(in_order)  # first positions, ascending: text order, then first occurrence
    bounds = np.searchsorted(text_of[where], np.arange(n_texts + 1), side="left")
    return _Counted(features[where].astype(np.intp), count_at[where], bounds)


_LOCKSTEP_MIN = 48
"""From this many texts on, they are walked in lockstep (one numpy step per byte position for all of
them) rather than one by one in Python: per step the cost hardly depends on how many texts walk."""


def _features(m: LanguageModel, datas: Sequence[bytes]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The features every text's walk emits, text after text, in order; and the text of each."""
    n = len(datas)
    lengths = sorted((len(d) for d in datas), reverse=True)
    if n < _LOCKSTEP_MIN or lengths[_LOCKSTEP_MIN - 1] == 0:
        walks = [np.asarray(_walk(m, 0, data)[1], dtype=np.int32) for data in datas]
    elif lengths[0] <= lengths[_LOCKSTEP_MIN - 1]:
        # every text ends within the lockstep walk (texts cut at the same length): the features are
        # read from the whole walk at once, text after text (row-major), positions past an end dropped
        steps = lengths[0]
        per_text, _ = _lockstep(m, datas, steps)
        emitted = per_text >= 0
        emitted &= np.arange(steps) < np.fromiter(map(len, datas), dtype=np.int64, count=n)[:, None]
        return per_text[emitted], np.repeat(np.arange(n, dtype=np.int64), emitted.sum(axis=1))
    else:
        walks = _walk_lockstep(m, datas, lengths[_LOCKSTEP_MIN - 1])
    sizes = [len(w) for w in walks]
    features = np.concatenate(walks) if walks else np.zeros(0, dtype=np.int32)
    return features, np.repeat(np.arange(n, dtype=np.int64), sizes)


def _walk_lockstep(m: LanguageModel, datas: Sequence[bytes], steps: int) -> list[np.ndarray[Any, Any]]:
    """Per text, the features its walk emits: all texts advance one byte per step for ``steps``
    steps (as long as _LOCKSTEP_MIN of them are still walking); the few longer ones then finish in
    Python from where they are. Positions past a text's end walk on byte 0 (valid transitions) and
    are dropped. Three calls per step, nothing allocated; the states' features are read after the
    walk, in one call."""
    per_text, last = _lockstep(m, datas, steps)
    walks = []
    for k, data in enumerate(datas):
        walked = per_text[k, : min(len(data), steps)]
        features = walked[walked >= 0]
        if len(data) > steps:
            _, rest = _walk(m, int(last[k]), data[steps:])
            features = np.concatenate([features, np.asarray(rest, dtype=np.int32)])
        walks.append(features)
    return walks


def _lockstep(
    m: LanguageModel, datas: Sequence[bytes], steps: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The lockstep walk of :func:`_walk_lockstep`: per text (row) the feature (or -1) of each step's
    state, and each text's state after the last step."""
    n = len(datas)
    # one row of bytes per text, padded with byte 0 (one join, not a numpy call per text)
    grid = np.frombuffer(b"".join([d[:steps].ljust(steps, b"\0") for d in datas]), dtype=np.uint8)
    columns = np.ascontiguousarray(grid.reshape(n, steps).T)  # one row of bytes per step
    del grid
    nm, rb = m.nextmove_array, m.rowbase_array
    states = np.empty((steps, n), dtype=nm.dtype)
    position = np.full(n, int(rb[0]), dtype=np.int64)  # the start state's row
    for i in range(steps):
        np.add(position, columns[i], out=position)
        np.take(nm, position, out=states[i])
        np.take(rb, states[i], out=position)
    del columns, position
    per_text = np.ascontiguousarray(np.take(m.out_array, states).T)
    return per_text, states[-1]


def _hits(m: LanguageModel, datas: Sequence[bytes]) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Per text: the feature rows its walk hits, in order of first occurrence, and how often."""
    counted = _counted_many(*_features(m, datas), len(datas))
    b = counted.bounds.tolist()
    return [(counted.features[b[k] : b[k + 1]], counted.counts[b[k] : b[k + 1]]) for k in range(len(datas))]


_CHUNK_BYTES = 1 << 20
"""Texts walked and scored together: as many as keep (texts x longest text) within this (the walk's
arrays are a few bytes per cell), at most _CHUNK_TEXTS."""
_CHUNK_TEXTS = 1024


def _chunks(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive texts per chunk (see _CHUNK_BYTES)."""
    out: list[tuple[int, int]] = []
    start, longest = 0, 0
    for i, size in enumerate(lengths):
        longest = max(longest, size)
        if i > start and ((i - start + 1) * longest > _CHUNK_BYTES or i - start >= _CHUNK_TEXTS):
            out.append((start, i))
            start, longest = i, size
    if lengths:
        out.append((start, len(lengths)))
    return out


def classify_many(texts: Sequence[str]) -> list[tuple[str, float]]:
    """``(language, probability)`` per text, as ``LanguageIdentifier(norm_probs=True).classify``."""
    results: list[tuple[str, float]] = []
    if not texts:
        return results
    m = model()
    datas = [_encode(text) for text in texts]
    for start, stop in _chunks([len(d) for d in datas]):
        results.extend(_classify_chunk(m, datas[start:stop]))
    return results


_LOG1P = np.log1p(np.arange(4096, dtype=np.float32))
"""``np.log1p`` of the float32 counts 0..4095, made once by the same call on the same type (so the
same bits): a feature's weight is read here instead of computed per feature of every text."""


def _log1p(counts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``np.log1p(counts)`` of whole float32 counts, from :data:`_LOG1P` when they are all within it."""
    if len(counts) and counts.max() < len(_LOG1P):
        return np.asarray(_LOG1P[counts.astype(np.intp)])
    return np.asarray(np.log1p(counts))


def _classify_chunk(m: LanguageModel, datas: Sequence[bytes]) -> list[tuple[str, float]]:
    n = len(datas)
    counted = _counted_many(*_features(m, datas), n)
    # the rows the chunk hits, converted once: a scatter marks them (no sort), each feature's row
    # in that block is then one lookup
    hit = np.zeros(m.ptc.shape[0], dtype=bool)
    hit[counted.features] = True
    union = np.flatnonzero(hit)
    del hit
    rows = np.asarray(m.ptc[union], dtype=np.float32)  # the one float16 -> float32 conversion
    row_of = np.empty(m.ptc.shape[0], dtype=np.intp)
    row_of[union] = np.arange(len(union), dtype=np.intp)
    block_rows = row_of[counted.features]
    weights = _log1p(counted.counts)
    bounds = counted.bounds.tolist()
    # a text without any feature scores 0 everywhere (uniform), like py3langid under norm_probs
    scores = np.zeros((n, len(m.classes)), dtype=np.float32)
    # each text's rows gathered in turn into one buffer (np.take of whole rows into its head: a copy
    # per row, no fancy-indexing iterator, no array per text), then py3langid's product of them
    gathered = np.empty((int(np.diff(counted.bounds).max()), rows.shape[1]), dtype=np.float32)
    for k in range(n):
        a, b = bounds[k], bounds[k + 1]
        if b > a:  # py3langid's sum, term by term in its order: log1p(counts) @ ptc[features] + pc
            text_rows = np.take(rows, block_rows[a:b], axis=0, out=gathered[: b - a], mode="clip")
            np.add(weights[a:b] @ text_rows, m.pc, out=scores[k])
    # py3langid's normalisation, for all texts at once: x 1/sqrt(bytes), softmax, aliases folded
    scores *= np.array([1.0 / math.sqrt(len(d) or 1) for d in datas], dtype=np.float32)[:, None]
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in m.alias_pairs:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    probs = scores[np.arange(n), best]
    return [(m.classes[b], p) for b, p in zip(best.tolist(), probs.tolist(), strict=True)]
