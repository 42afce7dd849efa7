"""Language identification with py3langid's model, loaded once and lean in memory and CPU.

Scores are py3langid's (``LanguageIdentifier(norm_probs=True).classify``): the same byte DFA walk,
the same naive Bayes sums in float32 in the same order, the same length-scaled softmax and the same
folding of aliased labels; only how the model is held and how the sums are computed differ:

* **Loaded once per process, on first use, by one thread** (:func:`model`). The HTTP API parses
  bodies in worker threads: without the lock, two batches in flight loaded the model twice at once
  (~100 MB each while loading, ~1 CPU-second each).
* **Read row by row, as texts first reach them.** The first load extracts the model's arrays
  (``.npy`` members of py3langid's ``model.npz.xz``) into a cache directory
  (``VIGIL_INGEST_LANGID_CACHE_DIR``, default ``<tmp>/vigil-langid-<uid>``, created 0700; one others
  can write to is refused); the two large ones (DFA transitions 39 MB, feature weights 27 MB) are then
  read a row at a time (``pread``) into compact tables when a walk first reaches a row
  (:class:`_RowCache`): alerts in a few languages reach few rows (20,000 bench alerts: 2,387 of
  38,346 DFA rows, 2,426 of 100,053 feature rows; ~3 MB). They used to be memory-mapped, but each
  page fault of a mapping maps the 16 pages around the row touched: ~30 MB resident for those rows.
  The container image ships the extracted arrays (``/app/langid-cache``, read-only). Without a usable
  cache directory the arrays are read into memory instead (66 MB, no transient copies).
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
import mmap
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
_ON_DEMAND = ("ptc", "nextmove")
"""The two large arrays (27 + 39 MB): their rows are read when first used; the others are small
and read into memory."""
_COMPLETE = "complete"
_ROW = 256
"""Transitions per DFA row (one per byte value)."""


class _RowSource:
    """The rows of a 2-D array, read on request: from its ``.npy`` file in the cache by ``pread``
    (nothing mapped: a mapping's page faults map the 16 pages around each row touched, ~30 MB
    for rows that hold ~3 MB) or from an array in memory."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype[Any], *, path: Path | None = None,
                 offset: int = 0, array: np.ndarray[Any, Any] | None = None) -> None:  # fmt: skip
        self.shape = shape
        self.dtype = dtype
        self.array = array
        self.row_bytes = shape[1] * dtype.itemsize
        self.offset = offset
        self.file = open(path, "rb", buffering=0) if path is not None else None  # noqa: SIM115 (the model's)

    @classmethod
    def from_npy(cls, path: Path, width: int | None = None) -> _RowSource:
        """The rows of the array in ``path`` (C order; a 1-D array as rows of ``width``)."""
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
        size = int(np.prod(shape))
        cols = width if width is not None else (int(shape[1]) if len(shape) == 2 else 0)
        if fortran or not cols or size % cols:
            raise ValueError(f"unexpected array in {path.name}")
        if os.path.getsize(path) < offset + size * np.dtype(dtype).itemsize:
            raise ValueError(f"{path.name} is truncated")
        return cls((size // cols, cols), np.dtype(dtype), path=path, offset=offset)

    @classmethod
    def in_memory(cls, array: np.ndarray[Any, Any], width: int | None = None) -> _RowSource:
        rows = np.ascontiguousarray(array).reshape(-1, width if width is not None else array.shape[-1])
        return cls((int(rows.shape[0]), int(rows.shape[1])), rows.dtype, array=rows)

    def read_row(self, row: int) -> np.ndarray[Any, Any]:
        """Row ``row`` (its values, any array-like of them)."""
        out: np.ndarray[Any, Any]
        if self.array is not None:
            out = self.array[row]
            return out
        assert self.file is not None
        data = os.pread(self.file.fileno(), self.row_bytes, self.offset + row * self.row_bytes)
        if len(data) != self.row_bytes:
            raise OSError(f"short read from {self.file.name!r}")
        out = np.frombuffer(data, dtype=self.dtype)
        return out

    def read(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Rows ``rows`` (ascending, distinct), as an array (len(rows), width); one ``pread`` per run
        of consecutive rows."""
        out: np.ndarray[Any, Any]
        if self.array is not None:
            out = self.array[rows]
            return out
        assert self.file is not None
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        flat = out.reshape(-1).view(np.uint8)
        wanted = rows.tolist()
        i = 0
        while i < len(wanted):
            j = i + 1
            while j < len(wanted) and wanted[j] == wanted[j - 1] + 1:
                j += 1
            size = (j - i) * self.row_bytes
            data = os.pread(self.file.fileno(), size, self.offset + wanted[i] * self.row_bytes)
            if len(data) != size:
                raise OSError(f"short read from {self.file.name!r}")
            flat[i * self.row_bytes : j * self.row_bytes] = np.frombuffer(data, dtype=np.uint8)
            i = j
        return out


def _distinct(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The distinct values, ascending (``np.unique``, whose first call costs ~10 MB of imports)."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    out: np.ndarray[Any, Any] = ordered[keep]
    return out


def _anonymous(rows: int, width: int, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """A zeroed (rows, width) array in its own anonymous mapping: a page is resident only once
    written, so a table sized for every row costs only the rows copied into it."""
    size = max(1, rows * width * dtype.itemsize)
    table: np.ndarray[Any, Any] = np.frombuffer(mmap.mmap(-1, size), dtype=dtype, count=rows * width)
    return table.reshape(rows, width)


class _RowCache:
    """The rows of a :class:`_RowSource` used so far, copied into a compact table in the order they
    were first needed: ``slot[r]`` is row ``r``'s index in ``table`` (-1: not yet read). The first
    ``reserved`` rows of the table are the caller's. Readers may run in any thread: rows are written
    before their slots, under a lock."""

    def __init__(self, source: _RowSource, dtype: np.dtype[Any], reserved: int = 0) -> None:
        self.source = source
        self.shape = source.shape
        self.table = _anonymous(source.shape[0] + reserved, source.shape[1], dtype)
        self.slot = np.full(source.shape[0], -1, dtype=np.int64)
        self.used = reserved
        self.lock = threading.Lock()

    def slots(self, rows: np.ndarray[Any, Any], on_load: Any = None) -> np.ndarray[Any, Any]:
        """The table slots of ``rows``, reading those not read yet (``on_load(rows, slots)`` is then
        called with the new ones, under the lock, before anyone else can read them)."""
        found: np.ndarray[Any, Any] = self.slot[rows]
        if (found >= 0).all():
            return found
        with self.lock:
            missing = _distinct(rows[self.slot[rows] < 0])
            missing = missing[self.slot[missing] < 0]
            if len(missing):
                start = self.used
                self.table[start : start + len(missing)] = self.source.read(missing)
                new = np.arange(start, start + len(missing), dtype=np.int64)
                self.used = start + len(missing)
                if on_load is not None:
                    on_load(missing, new)
                self.slot[missing] = new
        found = self.slot[rows]
        return found


@dataclass(frozen=True)
class LanguageModel:
    """py3langid's model in the form the walk and the scoring use.

    The DFA's transition rows and the feature rows are read on first use (:class:`_RowCache`): the
    texts a service sees reach few of them (20,000 bench alerts: 2,387 of 38,346 DFA rows, 2,426 of
    100,053 feature rows). A state whose row is not read yet has the offset of the *trap* row, whose
    transitions all lead to the trap state (which has no feature and stays trapped): a walk that
    ends trapped reached a row not read yet, and is walked again, reading rows as it reaches them.
    """

    nextmove: Any
    """DFA transitions (row offset | byte -> next state), uint32, indexable (memoryview of the
    compact table ``moves.table``: row 0 is the trap row)."""
    rowbase: list[int]
    """Per state: the offset of its row in ``nextmove`` (0: not read yet; a list: its ints exist
    once, the walk indexing it allocates nothing)."""
    out: list[int]
    """Per state: the feature row it emits, or -1 (the trap state: -1)."""
    nextmove_array: np.ndarray[Any, Any]
    """``nextmove`` as an array, ``rowbase`` and ``out`` as arrays: for the walk in lockstep."""
    rowbase_array: np.ndarray[Any, Any]
    out_array: np.ndarray[Any, Any]
    moves: _RowCache
    """The DFA rows read so far (``nextmove``'s table)."""
    state_row: np.ndarray[Any, Any]
    """Per state: its row in the model's transition table."""
    states_by_row: np.ndarray[Any, Any]
    row_starts: np.ndarray[Any, Any]
    """The states of model row ``r``: ``states_by_row[row_starts[r] : row_starts[r + 1]]``."""
    trap: int
    """The trap state (the number of real states)."""
    ptc: _RowCache
    """Per feature row: log P(feature | language), float16, (features, languages): the rows read so far."""
    pc: np.ndarray[Any, Any]
    """log P(language), float32."""
    classes: list[str]
    alias_pairs: tuple[tuple[int, int], ...]
    """(first, duplicate) columns of labels the model lists twice (script aliases)."""
    mapped: bool
    """Whether the large arrays' rows are read from the cache's files (else they are in memory)."""


def _read_states(m: LanguageModel, states: np.ndarray[Any, Any]) -> None:
    """Read the DFA rows of ``states`` not read yet, and point every state of each such row at it."""

    def point(rows: np.ndarray[Any, Any], slots: np.ndarray[Any, Any]) -> None:
        for row, slot in zip(rows.tolist(), slots.tolist(), strict=True):
            _point(m, row, slot)

    m.moves.slots(_distinct(m.state_row[states]), point)


def _read_state(m: LanguageModel, state: int) -> None:
    """:func:`_read_states` of one state (the one-by-one walk's case: no arrays to set up)."""
    moves = m.moves
    row = int(m.state_row[state])
    with moves.lock:
        if moves.slot[row] >= 0:  # read meanwhile (its states were pointed at it before its slot was set)
            return
        slot = moves.used
        moves.table[slot] = moves.source.read_row(row)
        moves.used = slot + 1
        _point(m, row, slot)
        moves.slot[row] = slot


def _point(m: LanguageModel, row: int, slot: int) -> None:
    """Every state of model row ``row`` at its copy, table row ``slot``."""
    offset = slot * _ROW
    members = m.states_by_row[m.row_starts[row] : m.row_starts[row + 1]]
    m.rowbase_array[members] = offset
    rowbase = m.rowbase
    for state in members.tolist():
        rowbase[state] = offset


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


def _arrays_from_cache() -> dict[str, Any] | None:
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
                name: (
                    _RowSource.from_npy(folder / f"{name}{suffix}", _ROW if name == "nextmove" else None)
                    if name in _ON_DEMAND
                    else np.load(folder / f"{name}{suffix}")
                )
                for name in _MEMBERS
            }
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            # e.g. a /tmp cleaner removed some of the files: extract them again, once
            if attempt == 1 and marker.exists() and os.access(folder, os.W_OK):
                marker.unlink(missing_ok=True)
                continue
            log.warning("language model cache unusable; loading into memory", folder=str(folder), error=str(exc))
    return None


def _arrays_in_memory() -> dict[str, Any]:
    with tempfile.TemporaryFile() as tmp:
        with lzma.open(_model_file()) as src:
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.seek(0)
        with np.load(tmp, allow_pickle=False) as data:
            arrays: dict[str, Any] = {name: data[name] for name in _MEMBERS}
    arrays["nextmove"] = _RowSource.in_memory(arrays["nextmove"], _ROW)
    arrays["ptc"] = _RowSource.in_memory(arrays["ptc"])
    return arrays


def _load() -> LanguageModel:
    arrays = _arrays_from_cache()
    mapped = arrays is not None
    if arrays is None:
        arrays = _arrays_in_memory()
    moves_source: _RowSource = arrays["nextmove"]
    ptc_source: _RowSource = arrays["ptc"]
    state_row = np.asarray(arrays["nextmove_row"]).astype(np.int64)
    out = np.asarray(arrays["out_feat"]).astype(np.int32)
    if (
        len(out) != len(state_row)
        or moves_source.shape[1] != _ROW
        or moves_source.dtype.kind != "u"
        or len(state_row) == 0
        or int(state_row.min()) < 0
        or int(state_row.max()) >= moves_source.shape[0]
        or len(ptc_source.shape) != 2
    ):
        raise ValueError("unexpected py3langid model layout")
    classes = [str(c) for c in np.asarray(arrays["classes"]).tolist()]
    first: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for i, c in enumerate(classes):
        if c in first:
            pairs.append((first[c], i))
        else:
            first[c] = i
    trap = len(state_row)
    moves = _RowCache(moves_source, np.dtype(np.uint32), reserved=1)
    moves.table[0] = trap  # the trap row: every byte leads to the trap state
    flat = moves.table.reshape(-1)
    states_by_row = np.argsort(state_row, kind="stable")
    row_starts = np.searchsorted(state_row[states_by_row], np.arange(moves_source.shape[0] + 1))
    m = LanguageModel(
        nextmove=memoryview(flat.data),
        rowbase=[0] * (trap + 1),
        out=[*out.tolist(), -1],
        nextmove_array=flat,
        rowbase_array=np.zeros(trap + 1, dtype=np.int64),
        out_array=np.append(out, np.int32(-1)),
        moves=moves,
        state_row=state_row,
        states_by_row=states_by_row,
        row_starts=row_starts,
        trap=trap,
        ptc=_RowCache(ptc_source, ptc_source.dtype),
        pc=np.asarray(arrays["pc"], dtype=np.float32),
        classes=classes,
        alias_pairs=tuple(pairs),
        mapped=mapped,
    )
    _read_states(m, np.zeros(1, dtype=np.int64))  # the start state's row
    return m


def _encode(text: str) -> bytes:
    """py3langid's input normalisation: all-caps text lowered, NFC, UTF-8."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


def _walk(m: LanguageModel, s: int, data: bytes) -> tuple[int, list[int]]:
    """The DFA walk over ``data`` from state ``s``: the end state and the features emitted, in order."""
    nm, rb, out = m.nextmove, m.rowbase, m.out
    start = s
    features = [f for b in data if (f := out[(s := nm[rb[s] + b])]) >= 0]
    if s == m.trap:  # it reached a row not read yet: again, reading rows as it reaches them
        return _walk_reading(m, start, data)
    return s, features


def _walk_reading(m: LanguageModel, s: int, data: bytes) -> tuple[int, list[int]]:
    """:func:`_walk`, reading each state's row first if it is not read yet."""
    nm, rb, out = m.nextmove, m.rowbase, m.out
    features = []
    for b in data:
        offset = rb[s]
        if not offset:  # only the trap row is at offset 0
            _read_state(m, s)
            offset = rb[s]
        s = nm[offset + b]
        if (f := out[s]) >= 0:
            features.append(f)
    return s, features


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
        per_text, _, resume = _lockstep(m, datas, steps)
        emitted = per_text >= 0
        emitted &= np.arange(steps) < np.fromiter(map(len, datas), dtype=np.int64, count=n)[:, None]
        if not resume:
            return per_text[emitted], np.repeat(np.arange(n, dtype=np.int64), emitted.sum(axis=1))
        # a few texts reached rows not read yet: each goes on one by one from where it was trapped
        for k, (step, _) in resume.items():
            emitted[k, step:] = False
        sizes = emitted.sum(axis=1)
        walked = per_text[emitted]
        ends = np.cumsum(sizes).tolist()
        pieces: list[np.ndarray[Any, Any]] = []
        done = 0
        for k, (step, state) in sorted(resume.items()):
            rest = np.asarray(_walk_reading(m, state, datas[k][step:])[1], dtype=np.int32)
            pieces += (walked[done : ends[k]], rest)
            done = ends[k]
            sizes[k] += len(rest)
        pieces.append(walked[done:])
        return np.concatenate(pieces), np.repeat(np.arange(n, dtype=np.int64), sizes)
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
    per_text, last, resume = _lockstep(m, datas, steps)
    walks = []
    for k, data in enumerate(datas):
        if k in resume:  # it reached a row not read yet: on one by one from where it was trapped
            step, state = resume[k]
            walked = per_text[k, :step]
            rest = _walk_reading(m, state, data[step:])[1]
            walks.append(np.concatenate([walked[walked >= 0], np.asarray(rest, dtype=np.int32)]))
            continue
        walked = per_text[k, : min(len(data), steps)]
        features = walked[walked >= 0]
        if len(data) > steps:
            _, rest = _walk(m, int(last[k]), data[steps:])
            features = np.concatenate([features, np.asarray(rest, dtype=np.int32)])
        walks.append(features)
    return walks


def _lockstep(
    m: LanguageModel, datas: Sequence[bytes], steps: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[int, tuple[int, int]]]:
    """The lockstep walk of :func:`_walk_lockstep`: per text (row) the feature (or -1) of each step's
    state, each text's state after the last step, and for each text that reached a row not read yet
    within its own bytes (trapped: the trap state has no feature and keeps it) the step it was
    trapped at and the state it came from, to go on from (``{text: (step, state)}``)."""
    n = len(datas)
    # one row of bytes per text, padded with byte 0 (one join, not a numpy call per text)
    grid = np.frombuffer(b"".join([d[:steps].ljust(steps, b"\0") for d in datas]), dtype=np.uint8)
    columns = np.ascontiguousarray(grid.reshape(n, steps).T)  # one row of bytes per step
    del grid
    states = np.empty((steps, n), dtype=m.nextmove_array.dtype)
    _steps(m, columns, states)
    ends = np.fromiter((min(len(d), steps) - 1 for d in datas), dtype=np.int64, count=n)
    trapped = states[ends.clip(0), np.arange(n)] == m.trap  # the trap state absorbs: at the end is enough
    trapped &= ends >= 0
    resume: dict[int, tuple[int, int]] = {}
    if trapped.sum() > max(_LOCKSTEP_MIN, n // 4):
        # a model that has read few rows yet (a new process): walking that many texts one by one
        # costs more than walking them all again in lockstep, reading the rows at each step
        _steps(m, columns, states, ends + 1)
    else:
        for k in np.flatnonzero(trapped).tolist():
            step = int(np.argmax(states[:, k] == m.trap))
            resume[k] = (step, int(states[step - 1, k]) if step else 0)
    del columns
    per_text = np.ascontiguousarray(np.take(m.out_array, states).T)
    return per_text, states[-1], resume


def _steps(
    m: LanguageModel,
    columns: np.ndarray[Any, Any],
    states: np.ndarray[Any, Any],
    reading: np.ndarray[Any, Any] | None = None,
) -> None:
    """The lockstep walk's steps (``states[i]``: each text's state after byte ``columns[i]``). With
    ``reading`` (each text's length in the walk), the rows of states not read yet are read before
    each step for the texts still within their bytes (two more calls per step)."""
    nm, rb = m.nextmove_array, m.rowbase_array
    position = np.full(len(states[0]), int(rb[0]), dtype=np.int64)  # the start state's row
    for i in range(len(states)):
        if reading is not None and i and not position.all():  # offset 0: the trap row (not read)
            unread = position == 0
            unread &= reading > i
            if unread.any():
                _read_states(m, states[i - 1][unread].astype(np.int64))
                np.take(rb, states[i - 1], out=position)
        np.add(position, columns[i], out=position)
        np.take(nm, position, out=states[i])
        np.take(rb, states[i], out=position)


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
    rows = np.asarray(m.ptc.table[m.ptc.slots(union)], dtype=np.float32)  # the one float16 -> float32 conversion
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
