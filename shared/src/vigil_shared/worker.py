"""Reliable stream consumption on top of FastStream: the part every consuming service shares.

Guarantees (see ``docs/guarantees.md``):

* **At-least-once with atomic, fenced hand-over.** FastStream reads a batch with ``XREADGROUP``;
  Vigil then validates every entry on its own, runs the handler, and writes the handler's output
  events, any dead letters and the ``XACK`` of the consumed entries in **one** server-side script
  (atomic like ``MULTI``/``EXEC``), or when the outputs are large, in one ``MULTI``/``EXEC`` of their
  ``XADD``s and that script (their bytes never enter Lua). The script checks, per entry, that this
  consumer still owns it in the group's pending list: if another replica claimed it meanwhile (this
  one was too slow, paused or partitioned), this replica's results for that entry are dropped (in a
  transaction: deleted again before it ends, so no reader ever sees them) and the claimer's count.
  Either the results are in the next stream and the input is acknowledged, or neither happened and
  the entry is still pending - so a stream-to-stream hop adds no duplicate.
* **No poison pill.** An entry that is not a valid event goes to ``vigil.deadletter`` at once with the
  reason; an entry whose handler raises stays pending and is retried through the claim loop until it
  has been delivered ``max_deliveries`` times, then it is dead-lettered with the last error. One bad
  entry never sinks the rest of its batch.
* **Claiming.** FastStream 0.7 never re-delivers a pending entry, so each replica runs a claim loop
  (``XAUTOCLAIM``) that takes over entries idle longer than ``claim_idle_ms`` — those of a crashed
  replica, or its own failed ones — and removes consumers that are long idle and own nothing.
* **Graceful stop.** :meth:`StreamWorker.stop` lets the current claim batch finish, then hands the
  consumer's remaining pending entries back (their idle time is set past ``claim_idle_ms`` so another
  replica claims them at its next pass) and removes the consumer from the group when it owns nothing.
* **Two handler modes.** ``handler=`` is called once per event (``concurrency`` at a time), each in
  its own task with the event's ids bound to the log context. ``batch_handler=`` (:data:`BatchHandler`)
  is called once per read or claim batch with its valid events in stream order and returns one
  outcome per event; the guarantees above hold per event in both modes.
* **Self-healing.** When the group disappears (``NOGROUP``: Redis restarted without persistence, or
  the stream was deleted) FastStream stops the subscriber; a watchdog recreates the group and
  restarts it, with a back-off, without operator action.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any, Generic, Protocol, TypeVar, cast

import structlog
from faststream.middlewares import AckPolicy
from faststream.params.no_cast import NoCastField
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import ConsumerProtocol, RedisBatchStreamMessage
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from vigil_shared import metrics, streams
from vigil_shared.cancellation import raise_if_cancel_requested
from vigil_shared.envelope import (
    DATA_FIELD,
    MalformedEntry,
    decode_body,
    encode_data,
    fields_to_text,
)
from vigil_shared.events import DeadLetter, Event, InvalidEvent, parse_event
from vigil_shared.settings import VigilSettings

if TYPE_CHECKING:
    from redis.typing import StreamIdT

log = structlog.get_logger("vigil.worker")

E = TypeVar("E", bound=Event)
Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Publication:
    """An event a handler wants published, and the stream it goes to.

    ``data``: the event's ``__data__`` value (:func:`vigil_shared.envelope.encode_data`) if the handler
    already encoded it, e.g. right after making the event, while its objects are still in the CPU's
    caches; an exception while encoding is then the handler's, for that event. With ``data`` the
    ``event`` may be ``None`` (the handler wrote the event's JSON itself and keeps no object alive
    until the commit). ``data=None``: the worker encodes ``event``.
    """

    stream: str
    event: Event | None
    data: bytes | None = None


def _publication_init(self: Publication, stream: str, event: Event | None, data: bytes | None = None) -> None:
    # the dataclass's own __init__ for a frozen class, with ``object.__setattr__`` held in a global
    # instead of read from ``__dataclass_builtins_object__`` for each field: the same three slot
    # writes at ~40% of the cost (~800 -> ~350 ns a publication; notify makes ~3 per alert)
    _setattr(self, "stream", stream)
    _setattr(self, "event", event)
    _setattr(self, "data", data)


_setattr = object.__setattr__
_publication_init.__qualname__ = "Publication.__init__"
Publication.__init__ = _publication_init  # type: ignore[method-assign]


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the entry is dead-lettered at once."""


Handler = Callable[[E], Awaitable[Sequence[Publication]]]
"""Per-entry handler: one event in, its publications out; raising fails that entry only."""

BatchHandler = Callable[[Sequence[E]], Awaitable[Sequence[Sequence[Publication] | BaseException]]]
"""Batch handler: the valid events of one read (or claim) batch, in stream order, in; one item per
event out, in the same order: the event's publications, or an exception *instance* for that event
(:class:`PermanentError`: dead-lettered at once; any other: failed, stays pending and is retried by
the claim loop, dead-lettered after ``max_deliveries``). If the handler itself raises (or returns a
wrong number of items), every event of the batch failed with that exception (retried, as above)."""


@dataclass
class WorkerStats:
    consumed: int = 0
    published: int = 0
    failed: int = 0
    deadlettered: int = 0
    claimed: int = 0
    restarts: int = 0
    fenced: int = 0
    handed_back: int = 0
    last_batch_at: float = field(default_factory=time.monotonic)


async def publish_events(
    redis: Redis,
    publications: Sequence[Publication],
    maxlen: int | None = None,
    *,
    ack: tuple[str, str, list[bytes]] | None = None,
) -> list[bytes]:
    """Write events (and optionally the XACK of their inputs) in one MULTI/EXEC transaction.

    ``maxlen`` is a *safety cap* (``XADD ... MAXLEN ~ maxlen``), not the retention: it trims without
    looking at consumer groups, so it must be far above what a lagging group can fall behind
    (``VIGIL_STREAM_MAXLEN``). Retention proper is :mod:`vigil_shared.retention`, which never trims
    what a group still needs. ``None`` or 0: no cap.
    """
    encoded = [(p.stream, {DATA_FIELD: _data(p)}) for p in publications]
    async with redis.pipeline(transaction=True) as pipe:
        for stream, fields in encoded:
            if maxlen:
                pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
            else:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
        if ack is not None and ack[2]:
            pipe.xack(ack[0], ack[1], *ack[2])
        results = await pipe.execute()
    _count_published(p.stream for p in publications)
    return [r for r in results[: len(encoded)]]


async def publish_entries(redis: Redis, stream: str, datas: Sequence[bytes], maxlen: int | None) -> list[bytes]:
    """``XADD stream [MAXLEN ~ maxlen] * __data__ <data>`` of each ``__data__`` value in one
    ``MULTI``/``EXEC`` transaction; the entry ids (ingest's HTTP batches publish through this). What
    :func:`publish_events` sends for these entries, packed in one go (per entry: the command's
    constant head, the value's length header, the value; no copy of the values) and its replies read
    without redis-py's pipeline: ``OK``, a ``QUEUED`` per XADD (a queueing error is raised and EXEC never runs), then
    EXEC's array of ids (an XADD's error in it is raised, as the pipeline raises it). Sent and retried
    like the stream worker's commit (:func:`_round_trip`, the client's retry policy on a connection
    error, as redis-py retries a transaction)."""
    n = len(datas)
    name = stream.encode()
    head = b"*%d\r\n$4\r\nXADD\r\n$%d\r\n%s" % (8 if maxlen else 5, len(name), name)
    if maxlen:
        cap = b"%d" % maxlen
        head += b"\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$%d\r\n%s" % (len(cap), cap)
    head += b"\r\n$1\r\n*" + _FIELD
    xadds: list[bytes] = [_CRLF] * (4 * n)  # per entry: head, the value's length header, value, CRLF
    xadds[0::4] = [head] * n
    xadds[1::4] = list(map(_header, map(len, datas)))
    xadds[2::4] = datas
    reply = await _round_trip(redis, [_MULTI, *xadds, _EXEC], n + 1)
    if not isinstance(reply, list) or len(reply) != n:
        raise ResponseError(f"unexpected reply to the publishing EXEC: {reply!r:.200}")
    for r in reply:
        if isinstance(r, Exception):
            raise r
    _published(stream).inc(n)
    return reply


def _data(publication: Publication) -> bytes:
    """The ``__data__`` value of a publication: its ``data``, or its event encoded."""
    if publication.data is not None:
        return publication.data
    if publication.event is None:
        raise ValueError(f"a publication to {publication.stream} has neither an event nor its data")
    return encode_data(publication.event)


def _count_published(stream_names: Iterable[str]) -> None:
    """``vigil_events_published_total``: one ``inc`` per stream, not per event."""
    for name, n in Counter(stream_names).items():
        metrics.EVENTS_PUBLISHED.labels(stream=name).inc(n)


# The fenced commit. KEYS[1] = consumed stream, KEYS[2..] = output streams.
# ARGV: group, consumer, maxlen (0 = no cap), layout, first entry id, last entry id, the number n of
# entries, then the n entry ids, then the __data__ value of each output of each entry in turn (every
# Vigil entry is that one field: vigil_shared.envelope). ``layout`` has, per entry, its output count
# then each output's key index, each as a 16-bit big-endian number (one binary string instead of
# 1 + n small arguments).
# For each entry still pending *for this consumer*, XADD its outputs and XACK it; an entry that
# another consumer claimed meanwhile (or that was already acknowledged) is skipped entirely.
# Ownership: one XPENDING over the batch's id range for this consumer (a set in Lua), and an XPENDING
# of the entry itself for any id not in it (claimed, or beyond a truncated range: always exact).
# The output keys are checked to be streams first, so a bad key fails the commit before any write.
# The safety cap is one XTRIM MAXLEN ~ per output stream after the batch (not an argument per XADD).
# Returns the ids that were *not* committed (fenced): usually none, so the reply stays short.
_COMMIT_COMMON = """
local group, consumer, maxlen, layout = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local n = tonumber(ARGV[7])  -- entries: their ids are ARGV[8 .. 7 + n]
local byte, call = string.byte, redis.call
-- the error reply for the first output key that holds something other than a stream, else nil
local function bad_output_key()
  for k = 2, #KEYS do
    local t = call('TYPE', KEYS[k])['ok']
    if t ~= 'stream' and t ~= 'none' then
      return redis.error_reply('WRONGTYPE output key ' .. KEYS[k] .. ' holds a ' .. t .. ', not a stream')
    end
  end
end
-- whether this consumer still owns the entry id (one XPENDING over the batch's range, made at the
-- first call; an XPENDING of the entry itself for any id not in it)
local owned
local function owns(id)
  if owned == nil then
    owned = {}
    for _, row in ipairs(call('XPENDING', KEYS[1], group, ARGV[5], ARGV[6], 2 * n + 16, consumer)) do
      owned[row[1]] = true
    end
  end
  return owned[id] or #call('XPENDING', KEYS[1], group, id, id, 1, consumer) == 1
end
-- acknowledge the ids, then the safety cap on every output stream
local function ack_and_cap(acks)
  for j = 1, #acks, 1000 do
    call('XACK', KEYS[1], group, unpack(acks, j, math.min(j + 999, #acks)))
  end
  if maxlen > 0 then
    for k = 2, #KEYS do call('XTRIM', KEYS[k], 'MAXLEN', '~', maxlen) end
  end
end
"""
"""What both commit scripts share (prepended to each): their arguments, the output-key check, the
ownership test and the acknowledgement with the safety cap."""

_COMMIT_LUA = _COMMIT_COMMON + """
local bad = bad_output_key()
if bad then return bad end
local fenced, acks = {}, {}
local p, o = 1, 8 + n  -- o: the argument of the entry's first output
for i = 8, 7 + n do
  local hi, lo = byte(layout, p, p + 1)
  local nout = hi * 256 + lo
  local id = ARGV[i]
  if owns(id) then
    for k = 1, nout do
      local khi, klo = byte(layout, p + 2 * k, p + 2 * k + 1)
      call('XADD', KEYS[khi * 256 + klo], '*', '__DATA__', ARGV[o + k - 1])
    end
    acks[#acks + 1] = id
  else
    fenced[#fenced + 1] = id
  end
  p = p + 2 + 2 * nout
  o = o + nout
end
ack_and_cap(acks)
return fenced
""".replace("__DATA__", DATA_FIELD.decode())

# The fenced commit of a batch whose outputs are large (at least ``_MULTI_FROM`` bytes each on average
# and ``_MULTI_MIN_BYTES`` in all, such as a batch of classify's ~3.3 KB ``AlertClassified`` or of
# notify's ~650-byte ``NotificationDelivered``): one MULTI/EXEC transaction, so their bytes never
# enter Lua (Redis's Lua hashes every byte of every string it is handed, ~11 instructions a byte: 44%
# of Redis's work for the one-script commit of classify's batches). The transaction holds each
# output's plain ``XADD stream * __data__ value``, in the batch's order, then this script (EVAL: a
# server that lost its scripts cannot make it fail while the XADDs run), then EXEC. Nothing runs
# between them, so the script sees the batch's outputs as the last entries of their streams and
# decides as _COMMIT_LUA does. KEYS and ARGV as _COMMIT_LUA's, without the outputs (up to the entry
# ids). An entry that is fenced has its outputs deleted again (XDEL, found from the end of their
# streams) before EXEC returns, so no reader ever sees them (a stream the transaction made stays,
# empty: no DEL, which the services' Redis users may not run, deploy/redis/render_acl.py; they need
# XDEL on the streams they publish to). An output key that is not a stream (its XADDs failed) fails
# the commit: the batch's outputs are deleted from the other streams and nothing is acknowledged.
_COMMIT_MULTI_LUA = _COMMIT_COMMON + """
-- delete the outputs of the entries gone(i) says (i: the entry's position in the batch)
local function drop(gone)
  local count, del = {}, {}
  local p, i, len = 1, 0, #layout
  while p <= len do
    local hi, lo = byte(layout, p, p + 1)
    local nout = hi * 256 + lo
    i = i + 1
    local g = gone(i)
    for o = 1, nout do
      local khi, klo = byte(layout, p + 2 * o, p + 2 * o + 1)
      local k = khi * 256 + klo
      local c = (count[k] or 0) + 1
      count[k] = c
      if g then
        local d = del[k]
        if d == nil then d = {}; del[k] = d end
        d[#d + 1] = c
      end
    end
    p = p + 2 + 2 * nout
  end
  for k, d in pairs(del) do
    if call('TYPE', KEYS[k])['ok'] == 'stream' then
      local n = count[k]
      local rows = call('XREVRANGE', KEYS[k], '+', '-', 'COUNT', n)
      local ids = {}
      for _, c in ipairs(d) do
        local row = rows[n - c + 1]
        if row then ids[#ids + 1] = row[1] end
      end
      for j = 1, #ids, 1000 do
        call('XDEL', KEYS[k], unpack(ids, j, math.min(j + 999, #ids)))
      end
    end
  end
end
local bad = bad_output_key()
if bad then
  drop(function() return true end)
  return bad
end
local fenced, acks, out = {}, {}, {}
for i = 1, n do
  local id = ARGV[7 + i]
  if owns(id) then
    acks[#acks + 1] = id
  else
    fenced[#fenced + 1] = id
    out[i] = true
  end
end
if #fenced > 0 then drop(function(i) return out[i] end) end
ack_and_cap(acks)
return fenced
"""

_U16_MAX = 0xFFFF


_REMOVE_IDLE_LUA = """
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
  local idle = tonumber(info['idle']) > tonumber(ARGV[3])
  if info['name'] ~= ARGV[2] and tonumber(info['pending']) == 0 and idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
"""


async def commit_batch(
    redis: Redis,
    stream: str,
    group: str,
    consumer: str,
    results: Sequence[tuple[bytes, Sequence[Publication]]],
    maxlen: int | None = None,
) -> set[bytes]:
    """Atomically publish each entry's outputs and acknowledge it, for the entries ``consumer`` still
    owns; returns the ids committed (the others were claimed by another consumer meanwhile)."""
    if not results:
        return set()
    ids = [entry_id for entry_id, _ in results]
    fenced, _ = await _commit(
        redis, stream, group, consumer, ids, _gather(stream, [pubs for _, pubs in results]), maxlen
    )
    return set(ids) - fenced


async def commit_encoded(
    redis: Redis,
    stream: str,
    group: str,
    consumer: str,
    results: Sequence[tuple[bytes, Sequence[tuple[str, bytes]]]],
    maxlen: int | None = None,
) -> set[bytes]:
    """:func:`commit_batch` with each output already encoded: ``(stream, __data__ value)`` pairs
    (:func:`vigil_shared.envelope.encode_data`). Committed by one script (:data:`_COMMIT_LUA`), or when
    the outputs are large, by one transaction of their XADDs and a script (:data:`_COMMIT_MULTI_LUA`):
    the same effects either way."""
    if not results:
        return set()
    ids = [entry_id for entry_id, _ in results]
    outcomes = [list(map(_Encoded, outputs)) for _, outputs in results]
    fenced, _ = await _commit(redis, stream, group, consumer, ids, _gather(stream, outcomes), maxlen)
    return set(ids) - fenced


class _Output(Protocol):
    """What :func:`_gather` reads of an output: a :class:`Publication`, or an :class:`_Encoded` (whose
    ``data`` is never None)."""

    @property
    def stream(self) -> str: ...

    @property
    def data(self) -> bytes | None: ...


class _Encoded(tuple[str, bytes]):
    """An encoded output ``(stream, __data__ value)`` (:func:`commit_encoded`), read as an
    :class:`_Output` (made from the pair in C: no Python-level constructor per output)."""

    __slots__ = ()
    stream = cast("str", property(itemgetter(0)))
    data = cast("bytes", property(itemgetter(1)))


_Outputs = tuple[list[str], bytes, list[bytes]]
"""A batch's outputs gathered for its commit (:func:`_gather`): the script's KEYS (the consumed
stream, then each output stream once), the layout (per entry: its output count, then each output's
KEYS index, 16-bit big-endian numbers) and every output's ``__data__`` value, in order."""


def _gather(stream: str, outcomes: Iterable[Sequence[_Output]]) -> _Outputs:
    """The outputs of a batch's entries (``outcomes``: each entry's publications, in stream order),
    in the commit's terms. A publication without ``data`` is encoded here: its error is raised."""
    keys: list[str] = [stream]
    index: dict[str, bytes] = {}  # output stream -> its KEYS index as the layout's 16-bit number
    one: dict[str, bytes] = {}  # output stream -> the layout of an entry with that one output
    layout: list[bytes] = []
    lay = layout.append
    datas: list[bytes] = []
    put = datas.append

    def new_key(out_stream: str) -> bytes:
        """Add an output stream to KEYS; its index as the layout's 16-bit number (Lua is 1-based)."""
        keys.append(out_stream)
        if len(keys) > _U16_MAX:
            raise ValueError(f"a batch cannot publish to more than {_U16_MAX - 1} streams")
        key_index = index[out_stream] = len(keys).to_bytes(2)
        return key_index

    for pubs in outcomes:
        if len(pubs) == 1:  # the usual case (classify): count and key index as one 4-byte chunk
            p = pubs[0]
            out_stream, data = p.stream, p.data
            chunk = one.get(out_stream)
            if chunk is None:
                chunk = one[out_stream] = _U16[1] + (index.get(out_stream) or new_key(out_stream))
            lay(chunk)
            put(_data(cast("Publication", p)) if data is None else data)
            continue
        n_out = len(pubs)
        if n_out < _SMALL:
            lay(_U16[n_out])
        elif n_out > _U16_MAX:
            raise ValueError(f"an entry cannot publish more than {_U16_MAX} events at once (got {n_out})")
        else:
            lay(n_out.to_bytes(2))
        for p in pubs:
            out_stream, data = p.stream, p.data
            lay(index.get(out_stream) or new_key(out_stream))
            put(_data(cast("Publication", p)) if data is None else data)
    return keys, b"".join(layout), datas


async def _commit(
    redis: Redis,
    stream: str,
    group: str,
    consumer: str,
    ids: list[bytes],
    outputs: _Outputs,
    maxlen: int | None,
) -> tuple[set[bytes], int]:
    """Commit a batch (entry ids in stream order, their :func:`_gather`-ed outputs) by one script or,
    for large outputs, one transaction; returns the fenced ids (not committed) and how many outputs
    were published. The commands are packed here (:func:`_command`)."""
    keys, layout, datas = outputs
    n_outputs = len(datas)
    encode = redis.get_encoder().encode  # type: ignore[no-untyped-call]
    if not _BYTES.issuperset(map(type, ids)):
        ids = [bytes(encode(i)) for i in ids]
    if not _BYTES.issuperset(map(type, datas)):
        datas = [bytes(encode(d)) for d in datas]
    size = sum(map(len, datas))
    multi = n_outputs > 0 and size >= _MULTI_FROM * n_outputs and size >= _MULTI_MIN_BYTES
    key_args = [encode(k) for k in keys]
    args = [
        b"%d" % len(keys),
        *key_args,
        encode(group),
        encode(consumer),
        b"%d" % int(maxlen or 0),
        layout,
        ids[0],
        ids[-1],
        b"%d" % len(ids),
    ]
    if multi:
        heads = {
            k: b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*%s" % (len(b), b, _FIELD)
            for k, b in zip(keys, key_args, strict=True)
        }
        xadds: list[bytes] = [_CRLF] * (4 * n_outputs)  # per output: head, value's length, value, CRLF
        if len(keys) == 2:
            xadds[0::4] = [heads[keys[1]]] * n_outputs
        else:
            xadds[0::4] = [heads[keys[k - 1]] for entry_keys in _entry_keys(layout) for k in entry_keys]
        xadds[1::4] = list(map(_header, map(len, datas)))
        xadds[2::4] = datas
        packed = [_MULTI, *xadds, *_command([b"EVAL", _COMMIT_MULTI_LUA_BYTES, *args], ids), _EXEC]
        reply = await _run_commit_multi(redis, packed, n_outputs)
    else:
        reply = await _run_commit(redis, _command([b"EVALSHA", _COMMIT_SHA_BYTES, *args], ids, datas))
    fenced = {f if isinstance(f, bytes) else str(f).encode() for f in reply}
    published = n_outputs
    if fenced or len(keys) > 2:  # per output stream (one stream: all the outputs went there)
        per_stream: Counter[str] = Counter()
        for entry_id, entry_keys in zip(ids, _entry_keys(layout), strict=True):
            if entry_id in fenced:
                published -= len(entry_keys)
            else:
                per_stream.update(keys[k - 1] for k in entry_keys)
        for name, n in per_stream.items():
            _published(name).inc(n)
    elif n_outputs:
        _published(keys[1]).inc(n_outputs)
    return fenced, published


def _published(stream: str) -> Any:
    """``vigil_events_published_total``'s child for ``stream``, looked up once per stream (a
    ``labels()`` call validates and locks: a few microseconds a batch)."""
    child = _PUBLISHED.get(stream)
    if child is None:
        child = metrics.EVENTS_PUBLISHED.labels(stream=stream)
        if len(_PUBLISHED) < 256:
            _PUBLISHED[stream] = child
    return child


_PUBLISHED: dict[str, Any] = {}


def _entry_keys(layout: bytes) -> list[list[int]]:
    """Per entry, the KEYS indexes (1-based) of its outputs, read from a commit's layout."""
    found: list[list[int]] = []
    p = 0
    while p < len(layout):
        n_out = int.from_bytes(layout[p : p + 2])
        found.append([int.from_bytes(layout[q : q + 2]) for q in range(p + 2, p + 2 + 2 * n_out, 2)])
        p += 2 + 2 * n_out
    return found


class _BulkHeaders(dict[int, bytes]):
    """The RESP header of a bulk string by its length, ``\\r\\n$<length>\\r\\n`` (led by the CRLF that
    ends what precedes it in the command), made once per length (up to ``_HEADERS_KEPT`` lengths)."""

    def __missing__(self, length: int) -> bytes:
        header = b"\r\n$%d\r\n" % length
        if len(self) < _HEADERS_KEPT:
            self[length] = header
        return header


_HEADERS_KEPT = 16384
_header = _BulkHeaders().__getitem__


def _command(*parts: list[bytes]) -> list[bytes]:
    """The RESP encoding of the command whose arguments are ``parts`` in turn, as chunks to send:
    the same bytes as redis-py's ``pack_command`` of those arguments (all ``bytes``), made with one
    dict lookup per argument (its length's header) and no copy of the arguments."""
    packed = [b"*%d" % sum(map(len, parts))]
    for args in parts:
        body: list[bytes] = [b""] * (2 * len(args))
        body[0::2] = list(map(_header, map(len, args)))
        body[1::2] = args
        packed += body
    packed.append(_CRLF)
    return packed


_SMALL = 256
_U16 = [n.to_bytes(2) for n in range(_SMALL)]
"""The 16-bit big-endian numbers below ``_SMALL``, made once (an entry's output count)."""
_COMMIT_SHA = hashlib.sha1(_COMMIT_LUA.encode()).hexdigest()
_COMMIT_SHA_BYTES = _COMMIT_SHA.encode()
_COMMIT_MULTI_LUA_BYTES = _COMMIT_MULTI_LUA.encode()
_MULTI_FROM = 256
"""The mean output size (bytes) from which a batch is committed by a transaction (:data:`_COMMIT_MULTI_LUA`).
Measured (``shared/benchmarks/bench_commit_redis.py --outputs 3``, callgrind, 3,000 entries in batches
of 200, the client's collector off): per output, the transaction costs the client ~2.3k instructions
more (its packing, and its ``QUEUED`` reply and id read by :func:`_skip_replies` and EXEC's array;
~14k when each QUEUED reply went through redis-py's ``read_response``, which put the threshold at
1 KB) and saves Redis ~1.4k of ``redis.call`` glue and ~11.8 instructions a byte (Lua's hashing of
the script's arguments): Redis 2.6k / 3.7k / 9.1k per output of 100 / 200 / 650 bytes, so about
even at 100 bytes; 256 leaves a margin. Notify's delivered events (~650 bytes) and classify's
``AlertClassified`` (~3.3 KB) take the transaction."""
_MULTI_MIN_BYTES = 8192
"""...and the outputs' bytes a batch needs at least for the transaction: its EVAL costs Redis a SHA1 of
the script (~120k instructions) and EXEC a few fixed commands, which a batch of one or two outputs
does not win back (``bench_commit_redis.py`` with 3.3 KB outputs, Redis instructions per entry: batches
of 1, the script 200k and the transaction 296k; of 5, 110k and 95k). A paced load (the bench's steady
1,000/s) reads such small batches."""
_BYTES = frozenset((bytes,))
_SEQUENCE_TYPES = frozenset((list, tuple))
_CRLF = b"\r\n"
_FIELD = _header(len(DATA_FIELD)) + DATA_FIELD
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _hiredis_parser() -> tuple[object, Any]:
    """redis-py's asyncio hiredis parser class, which :func:`_skip_replies` reads directly, and what
    its reader returns for a reply not yet complete; (a fresh object, None) when this redis-py has
    neither (each reply is then read by ``read_response``)."""
    try:
        from redis._parsers import hiredis

        return hiredis.NOT_ENOUGH_DATA, hiredis._AsyncHiredisParser
    except (ImportError, AttributeError):  # pragma: no cover - another redis-py
        return object(), None


_NOT_ENOUGH_DATA, _HiredisParser = _hiredis_parser()


async def _run_commit(redis: Redis, packed: list[bytes]) -> list[Any]:
    """Send the packed EVALSHA of the commit script and return its reply, loading the script first if
    the server does not know it (what ``register_script(...)(keys, args)`` does, without a script
    object per batch)."""
    try:
        return cast("list[Any]", await _round_trip(redis, packed, 0))
    except NoScriptError:
        await redis.script_load(_COMMIT_LUA)
        return cast("list[Any]", await _round_trip(redis, packed, 0))


async def _run_commit_multi(redis: Redis, packed: list[bytes], n_outputs: int) -> list[Any]:
    """Send the commit's transaction (``packed``: MULTI, the outputs' XADDs, the script's EVAL, EXEC)
    and return the script's reply. The replies are MULTI's OK, a QUEUED per command (a command's
    queueing error is raised, then EXEC aborts), then EXEC's array: the XADDs' ids, then the
    script's reply."""
    reply = await _round_trip(redis, packed, n_outputs + 2)
    if not isinstance(reply, list) or len(reply) != n_outputs + 1:
        raise ResponseError(f"unexpected reply to the commit's EXEC: {reply!r:.200}")
    result = reply[-1]
    if isinstance(result, Exception):  # the script's error (a bad output key): nothing committed
        raise result
    if not _BYTES.issuperset(map(type, reply[:-1])):  # (the ids: bytes, checked in one C loop)
        for r in reply[:-1]:
            if isinstance(r, Exception):  # an XADD's error the script did not see (it would have said)
                raise r
    return cast("list[Any]", result)


async def _skip_replies(conn: Any, n: int) -> None:
    """Read ``n`` replies on ``conn`` and drop them; the first error reply is raised, as redis-py's
    ``read_response`` raises it. A transaction's ``QUEUED`` replies (one per command: a commit of
    notify's batch has ~600) are taken from the connection's hiredis reader in one loop, where one
    ``read_response`` each (a coroutine, its timeout and error handling per reply) made the
    transaction cost the client ~14k instructions per output, ~2.3k now (:data:`_MULTI_FROM`). A
    push message in between (RESP3) is handed to the parser's handler and not counted, as
    ``read_response`` does; with another parser than hiredis's, each reply is read by
    ``read_response``."""
    parser: Any = getattr(conn, "_parser", None)
    if type(parser) is not _HiredisParser or not parser._connected:
        for _ in range(n):
            await conn.read_response(timeout=math.inf)
        return
    gets = parser._reader.gets
    for _ in range(n):
        reply = gets()
        if type(reply) is not bytes:  # (a QUEUED is bytes)
            await _other_reply(conn, parser, reply)


async def _other_reply(conn: Any, parser: Any, reply: Any) -> None:
    """:func:`_skip_replies` of a reply that is not a plain string: the rest of it read from the
    socket, a push message handled and the next reply read, an error reply raised."""
    gets = parser._reader.gets
    push_type = getattr(parser, "_hiredis_PushNotificationType", None)
    while True:
        if reply is _NOT_ENOUGH_DATA:
            try:
                await parser.read_from_socket()
            except OSError as exc:  # what read_response makes of it (the caller disconnects)
                raise RedisConnectionError(f"Error while reading from {conn._host_error()} : {exc.args}") from exc
        elif push_type is not None and isinstance(reply, push_type):
            await parser.handle_push_response(reply)
        elif isinstance(reply, Exception):  # a ResponseError, a ConnectionError (LOADING, ...)
            raise reply
        else:
            return
        reply = gets()


async def _round_trip(redis: Redis, packed: list[bytes], skip: int) -> Any:
    """Send commands already in the protocol's bytes on one of the client's connections, read
    ``skip`` replies and return the next one (an error reply raised as redis-py does). Retried on a
    connection error like any redis-py command (the client's retry policy: a commit is idempotent, an
    entry already acknowledged is fenced); on any other error while reading, the connection is
    closed, so no reply is left unread on it."""
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]

    async def attempt() -> Any:
        await conn.send_packed_command(packed)
        read = conn.read_response
        # one deadline for all the replies (the connection's socket timeout), not one timer per reply
        async with asyncio.timeout(conn.socket_timeout):
            if skip:
                await _skip_replies(conn, skip)
            return await read(timeout=math.inf)

    async def failed(error: Exception) -> None:
        await conn.disconnect()

    try:
        return await conn.retry.call_with_retry(attempt, failed)
    except ResponseError:
        if skip:  # replies may be left unread after the one that failed
            await conn.disconnect()
        raise
    except BaseException:
        await conn.disconnect()  # a reply may be left unread on it
        raise
    finally:
        await pool.release(conn)


class _NoCast(NoCastField):
    """FastStream's ``NoCastField`` (the batch body is documented as the event model but not
    validated against it), with a coroutine ``use``. fast_depends runs a synchronous ``use`` in a
    worker thread, so the stock field cost a thread hand-off (pool, future, loop wake-up) on every
    read batch for a function that returns its arguments; a coroutine is awaited in the loop."""

    async def use(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return kwargs


class _StreamSub(StreamSub):
    """FastStream's ``StreamSub`` with a cheap :meth:`add_prefix`.

    The stream subscriber calls ``add_prefix`` on every ``XREADGROUP`` and again for each batch's
    log context, and the stock one deep-copies the object each time (~30 ``deepcopy`` calls each;
    a tenth of the worker's profiled CPU at read batches of 10 entries). Every attribute of a ``StreamSub`` is an
    immutable scalar (names, ids, numbers, flags), so copying the slots is an equal, independent
    object (``copy.copy`` would be too, through the slower pickle protocol)."""

    __slots__ = ()

    def add_prefix(self, prefix: str) -> _StreamSub:
        new = object.__new__(type(self))
        for name in _STREAM_SUB_SLOTS:
            value = getattr(self, name, _UNSET)
            if value is not _UNSET:  # (a slot the constructor left unset stays unset)
                setattr(new, name, value)
        new.name = f"{prefix}{self.name}"
        return new


_UNSET = object()
_STREAM_SUB_SLOTS: tuple[str, ...] = tuple(
    dict.fromkeys(slot for klass in _StreamSub.__mro__ for slot in getattr(klass, "__slots__", ()))
)


def _observe_many(histogram: Any, value: float, n: int) -> None:
    """``histogram.observe(value)`` ``n`` times, as one update of its sum and of the one bucket the
    value falls into (the same samples; not ``n`` locked increments per batch event). Falls back to
    ``observe`` if prometheus_client's histogram child is not laid out as expected."""
    try:
        bounds, buckets, total = histogram._upper_bounds, histogram._buckets, histogram._sum
    except AttributeError:
        for _ in range(n):
            histogram.observe(value)
        return
    total.inc(value * n)
    for i, bound in enumerate(bounds):
        if value <= bound:
            buckets[i].inc(n)
            break


def _log_ids(event: Event) -> dict[str, str]:
    """The ids bound to log lines about ``event``: its correlation id and, if it has one, the alert id."""
    bound = {"correlation_id": event.correlation_id}
    alert_id = getattr(event, "alert_id", None) or getattr(getattr(event, "alert", None), "alert_id", None)
    if alert_id:
        bound["alert_id"] = alert_id
    return bound


class StreamWorker(Generic[E]):
    """Consumes one stream as one consumer group and hands each valid event to ``handler``."""

    def __init__(
        self,
        *,
        service: str,
        stream: str,
        group: str,
        model: type[E],
        handler: Handler[E] | None = None,
        batch_handler: BatchHandler[E] | None = None,
        settings: VigilSettings,
        concurrency: int = 1,
        description: str | None = None,
        consumer: str | None = None,
        parse: Callable[[bytes], E] | None = None,
    ) -> None:
        """``consumer``: this worker's consumer name in the group (default ``settings.consumer_name``);
        several workers of one process on the same group need distinct names. ``parse``: how an
        entry's body becomes the event (default ``parse_event(model, body)``); it must raise
        :class:`InvalidEvent` for what ``model`` refuses (the entry is dead-lettered with its reason)."""
        if (handler is None) == (batch_handler is None):
            raise ValueError("StreamWorker needs exactly one of handler= and batch_handler=")
        self.service = service
        self.stream = stream
        self.group = group
        self.model = model
        self._default_parse: Callable[[bytes], E] = partial(parse_event, model)
        self.parse: Callable[[bytes], E] = parse if parse is not None else self._default_parse
        # per-entry handler (``metrics.instrument_worker`` wraps it; in batch mode it is never called)
        self.handler = handler
        self.batch_handler = batch_handler
        self.settings = settings
        self.consumer = consumer or settings.consumer_name
        self.concurrency = concurrency
        self.description = description
        self.stats = WorkerStats()
        self.redis: Redis | None = None
        self._subscriber: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._wake = asyncio.Event()
        self._semaphore = asyncio.Semaphore(concurrency)
        # the metrics' children every batch updates, looked up once
        self._consumed_total = metrics.EVENTS_CONSUMED.labels(stream=stream, group=group)
        self._batch_seconds = metrics.BATCH_SECONDS.labels(stream=stream, group=group)
        self._handler_ok = metrics.HANDLER_SECONDS.labels(stream=stream, group=group, outcome="ok")

    # ------------------------------------------------------------------ wiring

    def attach(self, broker: RedisBroker) -> None:
        """Register the FastStream subscriber (reads batches; Vigil acks itself)."""
        model = self.model

        async def _raw_batch_parser(raw: Any, _original: Any) -> RedisBatchStreamMessage:
            # Keep the raw entries: each is validated on its own, so one bad entry cannot fail the batch.
            return RedisBatchStreamMessage(
                raw_message=raw,
                body=b"",
                content_type="application/json",
                # cast: FastStream only uses the consumer to ack, and Vigil acks itself (AckPolicy.MANUAL);
                # redis-py 8's hints for xack/xdel/xpending_range differ from FastStream's protocol
                consumer=cast("ConsumerProtocol", self.redis),
                group=self.group,
            )

        async def _entries(msg: Any, _original: Any) -> tuple[list[bytes], list[dict[bytes, bytes]]]:
            # the batch's raw entry ids and fields, as FastStream read them, are the handler's body: no
            # per-batch context lookup (a Context() parameter is resolved in a thread pool by
            # fast_depends), and no (id, fields) pair made per entry
            raw = msg.raw_message
            ids, data = raw["message_ids"], raw["data"]
            if len(ids) != len(data):
                raise ValueError(f"a read batch has {len(ids)} entry ids for {len(data)} entries")
            return ids, data

        async def on_batch(body: Annotated[list[model], _NoCast()]) -> None:  # type: ignore[valid-type]
            ids, data = cast("tuple[list[bytes], list[dict[bytes, bytes]]]", body)
            await self._process(ids, data, None)

        # real objects, not strings: FastStream resolves them at registration (and documents the model;
        # _NoCast: the body is not validated against it, each entry is validated on its own)
        on_batch.__annotations__ = {
            "body": Annotated[list[model], _NoCast()],  # type: ignore[valid-type]
            "return": None,
        }
        on_batch.__doc__ = self.description or f"{self.service} consumes {model.__name__} events."
        self._subscriber = broker.subscriber(
            stream=_StreamSub(
                self.stream,
                group=self.group,
                consumer=self.consumer,
                batch=True,
                max_records=self.settings.batch_size,
                polling_interval=self.settings.block_ms,
            ),
            parser=_raw_batch_parser,
            decoder=_entries,
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.stream}:{self.group}",
        )
        self._subscriber(on_batch)

    async def prepare(self, redis: Redis) -> None:
        """Before the broker starts: create the group at the start of the stream (FastStream would
        create it at ``$`` and miss entries written before the first replica started)."""
        self.redis = redis
        await self.ensure_group()

    async def start_background(self, redis: Redis) -> None:
        self.redis = redis
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name=f"claim:{self.stream}:{self.group}"),
            asyncio.create_task(self._watchdog(), name=f"watchdog:{self.stream}:{self.group}"),
        ]

    def begin_stop(self) -> None:
        """From now on the helper loops start nothing new: the watchdog no longer restarts the consume
        loop (which the broker is about to stop: a restart would read again during shutdown) and the
        claim loop takes no new claim batch. Call before stopping the broker; :meth:`stop` after it."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop the helper loops (a claim batch in progress may finish within ``grace_s``), then hand
        back what this consumer still holds. Call after the broker stopped reading."""
        self.begin_stop()
        if self._tasks:
            _, still = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in still:
                t.cancel()
            for t in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if self.redis is not None:
            try:
                await self.hand_back()
            except Exception as exc:  # Redis gone: the entries stay pending and are claimed later
                log.warning("could not hand back pending entries", stream=self.stream, error=str(exc))

    async def hand_back(self) -> int:
        """Make this consumer's pending entries claimable at once by other replicas, and leave the
        group if nothing is left. Returns how many entries were handed back."""
        assert self.redis is not None
        rows = await self.redis.xpending_range(
            self.stream, self.group, min="-", max="+", count=100_000, consumername=self.consumer
        )
        ids: list[StreamIdT] = [r["message_id"] for r in rows]
        if ids:
            # XCLAIM to ourselves with IDLE: no new delivery is counted, the idle time jumps past
            # claim_idle_ms, so the next XAUTOCLAIM of any replica takes them.
            await self.redis.xclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=0,
                message_ids=ids,
                idle=self.settings.claim_idle_ms + 1,
                justid=True,
            )
            self.stats.handed_back += len(ids)
            log.info("handed back pending entries", stream=self.stream, group=self.group, count=len(ids))
        else:
            # never delete a consumer that owns entries: XGROUP DELCONSUMER drops its pending list
            await self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
        return len(ids)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when stopping."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def healthy(self) -> tuple[bool, str]:
        """Liveness: the consume loop and the helper loops are alive (a stopped loop is restarted)."""
        for t in self._tasks:
            if t.done():
                return False, f"{t.get_name()} died"
        return True, "ok"

    @property
    def subscriber_running(self) -> bool:
        return bool(self._subscriber is not None and getattr(self._subscriber, "running", False))

    # ------------------------------------------------------------------ the core

    async def process(self, entries: Sequence[Entry], delivery_counts: dict[bytes, int] | None = None) -> None:
        """Validate, handle and hand over a batch of raw entries (see module docstring)."""
        await self._process([entry_id for entry_id, _ in entries], [fields for _, fields in entries], delivery_counts)

    async def _process(
        self,
        ids: list[bytes],
        fields: list[dict[bytes, bytes]],
        delivery_counts: dict[bytes, int] | None,
    ) -> None:
        """:meth:`process` of the entries ``zip(ids, fields)``. In batch mode, when every entry is a
        valid event and the handler returns a list or tuple of publications for each, the batch takes
        a short path: no per-entry bookkeeping, its outputs gathered straight into the commit
        (:func:`_gather`). Anything else (an invalid or deleted entry, a failed event, an output that
        cannot be encoded) is settled entry by entry (:meth:`_settle_entries`) from where the short
        path stopped: no entry is parsed twice, the handler is called once."""
        assert self.redis is not None, "start_background() first"
        started = time.perf_counter()
        if self.batch_handler is None or not ids:
            await self._commit_settled(ids, await self._settle_entries(ids, fields, delivery_counts), started)
            return
        parse = self.parse
        # the default parse is parse_event(model, body): its validator called here directly (a
        # ValidationError is made the same InvalidEvent by the per-entry path)
        validate = self.model.__pydantic_validator__.validate_json if parse is self._default_parse else parse
        events: list[E] = []
        add = events.append
        failure: Exception | None = None
        try:
            for entry_fields in fields:
                add(validate(decode_body(entry_fields)))
        except Exception as exc:  # an entry that is not a valid event (or was deleted)
            failure = exc
        del add  # (it holds the list)
        if failure is not None:  # settled one by one from that entry on
            settled = await self._settle_entries(ids, fields, delivery_counts, parsed=(events, failure))
            del events, failure  # (nothing of the batch is kept alive during the commit: see _commit_settled)
            await self._commit_settled(ids, settled, started)
            return
        outcomes, handler_s = await self._call_batch_handler(events)
        outputs: _Outputs | None = None
        if _SEQUENCE_TYPES.issuperset(map(type, outcomes)):  # every event has its publications
            try:
                outputs = _gather(self.stream, cast("list[Sequence[Publication]]", outcomes))
            except Exception:  # an output that cannot be encoded fails its own entry: one by one
                outputs = None
        if outputs is None:
            settled = await self._settle_entries(ids, fields, delivery_counts, handled=(events, outcomes, handler_s))
            del events, outcomes
            await self._commit_settled(ids, settled, started)
            return
        self._observe_handler(handler_s, len(events), 0)
        # the batch's events and publications are released before the commit's round trip (its
        # outputs are in ``outputs`` now): see _commit_settled
        del events, outcomes
        fenced, published = await _commit(
            self.redis, self.stream, self.group, self.consumer, ids, outputs, self.settings.stream_maxlen
        )
        if fenced:
            self._fenced(len(fenced))
        self._count(len(ids), published, 0, started)

    async def _settle_entries(
        self,
        ids: list[bytes],
        fields: list[dict[bytes, bytes]],
        delivery_counts: dict[bytes, int] | None,
        *,
        handled: tuple[list[E], Sequence[Sequence[Publication] | BaseException], float] | None = None,
        parsed: tuple[list[E], Exception] | None = None,
    ) -> tuple[list[tuple[bytes, list[tuple[str, bytes]]]], set[bytes], int]:
        """Parse, handle and settle the entries one by one; returns each settled entry's encoded
        outputs in stream order (:meth:`_encode`), the ids of the dead-lettered ones and how many
        dead letters they have. ``handled``: the events of every entry (all valid), the batch
        handler's outcomes for them and its seconds, when the handler already ran. ``parsed``: the
        events of the first entries and what parsing the next one raised, from :meth:`_process`."""
        # entry id -> what to publish when it is acknowledged (outputs or its dead letter)
        done: dict[bytes, Sequence[Publication]] = {}
        dead_ids: set[bytes] = set()
        jobs: list[tuple[bytes, dict[bytes, bytes], E]] = []
        if handled is not None:
            events, outcomes, handler_s = handled
            jobs = list(zip(ids, fields, events, strict=True))
            self._settle(jobs, outcomes, handler_s, delivery_counts, done, dead_ids)
        else:
            self._parse_entries(ids, fields, parsed or ([], None), jobs, done, dead_ids)
            if self.batch_handler is not None:
                if jobs:
                    outcomes, handler_s = await self._call_batch_handler([event for _, _, event in jobs])
                    self._settle(jobs, outcomes, handler_s, delivery_counts, done, dead_ids)
            else:

                async def run(entry_id: bytes, fields: dict[bytes, bytes], event: E) -> None:
                    assert self.handler is not None
                    with structlog.contextvars.bound_contextvars(**_log_ids(event)):
                        try:
                            async with self._semaphore:
                                produced = await self.handler(event)
                        except Exception as exc:
                            self._settle_failure(entry_id, fields, event, exc, delivery_counts, done, dead_ids)
                            return
                    done[entry_id] = list(produced)

                if self.concurrency == 1:
                    for job in jobs:
                        await run(*job)
                else:
                    await asyncio.gather(*(run(*job) for job in jobs))

        ordered = self._encode(ids, jobs, delivery_counts, done, dead_ids)
        return ordered, dead_ids, sum(len(done[eid]) for eid in dead_ids) if dead_ids else 0

    async def _commit_settled(
        self,
        ids: list[bytes],
        settled: tuple[list[tuple[bytes, list[tuple[str, bytes]]]], set[bytes], int],
        started: float,
    ) -> None:
        """Commit what :meth:`_settle_entries` settled, and count it."""
        assert self.redis is not None
        # What the commit needs is in ``ordered``: the batch's events and publications were released
        # before its round trip, not after it (by then the process's other consumers have run and their
        # memory is colder), so a consumer waiting on its commit holds no event objects and the next
        # batch reuses their memory. Every settled entry is in ``ordered`` with its outputs (a dead-lettered
        # one with its dead letter), so the counts below come from it and from ``dead_ids``.
        ordered, dead_ids, dead_outputs = settled
        del settled
        committed = await commit_encoded(
            self.redis, self.stream, self.group, self.consumer, ordered, self.settings.stream_maxlen
        )
        if len(committed) < len(ordered):
            self._fenced(len(ordered) - len(committed))
            n_dead = sum(1 for eid in dead_ids if eid in committed)
            published = sum(len(outs) for eid, outs in ordered if eid in committed and eid not in dead_ids)
        else:  # everything settled was committed
            n_dead = len(dead_ids)
            published = sum(len(outs) for _, outs in ordered) - dead_outputs
        self._count(len(ids), published, n_dead, started)

    def _parse_entries(
        self,
        ids: list[bytes],
        fields: list[dict[bytes, bytes]],
        parsed: tuple[list[E], Exception | None],
        jobs: list[tuple[bytes, dict[bytes, bytes], E]],
        done: dict[bytes, Sequence[Publication]],
        dead_ids: set[bytes],
    ) -> None:
        """Each entry's event into ``jobs``; a deleted entry settled with no output, an invalid one with
        its dead letter. ``parsed``: the events of the first entries and what parsing the next one
        raised (or None), from the short path of :meth:`_process`."""
        events, error = parsed
        k = len(events)
        jobs.extend(zip(ids[:k], fields[:k], events, strict=True))
        parse = self.parse
        # the default parse is parse_event(model, body): its validator called here directly, a
        # ValidationError made the same InvalidEvent (two Python calls fewer per entry)
        validate = self.model.__pydantic_validator__.validate_json if parse is self._default_parse else parse
        for entry_id, entry_fields in zip(ids[k:], fields[k:], strict=True):
            raised, error = error, None  # (the first entry's, if the short path parsed it already)
            if entry_fields is None:  # deleted (trimmed) while pending
                done[entry_id] = []
                continue
            try:  # (no local for the event: it would keep the batch's last one alive past the commit)
                try:
                    if raised is not None:
                        raise raised
                    jobs.append((entry_id, entry_fields, validate(decode_body(entry_fields))))
                except ValidationError as exc:
                    if validate is parse:  # a custom parse's own ValidationError: not caught, as before
                        raise
                    raise InvalidEvent(self.model.__name__, exc) from exc
            except (MalformedEntry, InvalidEvent) as exc:
                log.warning(
                    "invalid entry dead-lettered",
                    stream=self.stream,
                    entry_id=entry_id.decode(),
                    error=str(exc)[:300],
                )
                done[entry_id] = [self._dead_letter(entry_id, entry_fields, str(exc), 1, correlation_id=None)]
                dead_ids.add(entry_id)

    def _fenced(self, count: int) -> None:
        self.stats.fenced += count
        log.warning(
            "entries were claimed by another consumer while this one processed them; its results for "
            "them are discarded (the claimer publishes them)",
            stream=self.stream,
            group=self.group,
            count=count,
        )

    def _count(self, consumed: int, published: int, deadlettered: int, started: float) -> None:
        """A processed batch's stats and metrics."""
        self.stats.consumed += consumed
        self.stats.published += published
        self.stats.deadlettered += deadlettered
        self.stats.last_batch_at = time.monotonic()
        self._consumed_total.inc(consumed)
        if deadlettered:
            metrics.EVENTS_DEADLETTERED.labels(stream=self.stream, group=self.group).inc(deadlettered)
        self._batch_seconds.observe(time.perf_counter() - started)

    def _encode(
        self,
        ids: Sequence[bytes],
        jobs: Sequence[tuple[bytes, dict[bytes, bytes], E]],
        delivery_counts: dict[bytes, int] | None,
        done: dict[bytes, Sequence[Publication]],
        dead_ids: set[bytes],
    ) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
        """Each settled entry's outputs as ``(stream, __data__)``, in stream order. Encoded entry by
        entry: an output that cannot be serialised fails its own entry, like a handler error (retried,
        then dead-lettered), instead of failing the whole batch's commit."""
        encoded: list[tuple[bytes, list[tuple[str, bytes]]]] = []
        by_id: dict[bytes, tuple[dict[bytes, bytes], E]] | None = None
        for entry_id in ids:
            pubs = done.get(entry_id)
            if pubs is None:
                continue
            try:
                encoded.append((entry_id, [(p.stream, _data(p) if p.data is None else p.data) for p in pubs]))
                continue
            except Exception as exc:
                if by_id is None:
                    by_id = {eid: (fields, event) for eid, fields, event in jobs}
                if entry_id not in by_id:  # an invalid entry's dead letter: always serialisable
                    raise
                fields, event = by_id[entry_id]
                del done[entry_id]
                dead_ids.discard(entry_id)
                with structlog.contextvars.bound_contextvars(**_log_ids(event)):
                    self._settle_failure(entry_id, fields, event, exc, delivery_counts, done, dead_ids)
            if entry_id in done:  # dead-lettered: retries exhausted
                encoded.append((entry_id, [(p.stream, _data(p)) for p in done[entry_id]]))
        return encoded

    async def _call_batch_handler(
        self, events: list[E]
    ) -> tuple[Sequence[Sequence[Publication] | BaseException], float]:
        """The batch handler's outcome for each event, and the seconds it took. If it raises (or returns
        a wrong number of outcomes), every event failed with that exception."""
        assert self.batch_handler is not None
        started = time.perf_counter()
        outcomes: Sequence[Sequence[Publication] | BaseException]
        try:
            outcomes = await self.batch_handler(events)
            if len(outcomes) != len(events):
                raise ValueError(f"batch handler returned {len(outcomes)} results for {len(events)} events")
        except Exception as exc:
            log.warning(
                "batch handler failed; all its events failed",
                stream=self.stream,
                count=len(events),
                correlation_ids=[e.correlation_id for e in events[:50]],
                error=f"{type(exc).__name__}: {exc}",
            )
            outcomes = [exc] * len(events)
        return outcomes, time.perf_counter() - started

    def _settle(
        self,
        jobs: Sequence[tuple[bytes, dict[bytes, bytes], E]],
        outcomes: Sequence[Sequence[Publication] | BaseException],
        handler_s: float,
        delivery_counts: dict[bytes, int] | None,
        done: dict[bytes, Sequence[Publication]],
        dead_ids: set[bytes],
    ) -> None:
        """Settle each event's outcome from the batch handler (in ``jobs``' order)."""
        err = 0
        for job, outcome in zip(jobs, outcomes, strict=True):
            # a list or tuple (the usual outcome) is kept as returned: nothing mutates it (classify
            # returns a 1-tuple); tested first, so a success costs no isinstance nor job unpacking
            if type(outcome) is tuple or type(outcome) is list:
                done[job[0]] = outcome
            elif isinstance(outcome, BaseException):
                err += 1
                entry_id, fields, event = job
                with structlog.contextvars.bound_contextvars(**_log_ids(event)):
                    self._settle_failure(entry_id, fields, event, outcome, delivery_counts, done, dead_ids)
            else:
                done[job[0]] = list(outcome)
        self._observe_handler(handler_s, len(jobs) - err, err)

    def _observe_handler(self, seconds: float, ok: int, err: int) -> None:
        """``vigil_handler_seconds`` is per event: a batch call counts as its share for each of its events."""
        share = seconds / (ok + err)
        if ok:
            _observe_many(self._handler_ok, share, ok)
        if err:
            _observe_many(
                metrics.HANDLER_SECONDS.labels(stream=self.stream, group=self.group, outcome="error"), share, err
            )

    def _settle_failure(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        event: E,
        exc: BaseException,
        delivery_counts: dict[bytes, int] | None,
        done: dict[bytes, Sequence[Publication]],
        dead_ids: set[bytes],
    ) -> None:
        """A handler failed on ``event``: dead-letter it (permanent, or retries exhausted) or leave it
        pending for the claim loop. Call with the event's ids bound for logging."""
        if isinstance(exc, PermanentError):
            log.warning("entry dead-lettered", stream=self.stream, entry_id=entry_id.decode(), error=str(exc))
            done[entry_id] = [self._dead_letter(entry_id, fields, str(exc), 1, event.correlation_id)]
            dead_ids.add(entry_id)
            return
        self.stats.failed += 1
        metrics.EVENTS_FAILED.labels(stream=self.stream, group=self.group).inc()
        attempts = (delivery_counts or {}).get(entry_id, 1)
        if attempts >= self.settings.max_deliveries:
            error = f"handler failed {attempts} times, last: {type(exc).__name__}: {exc}"
            log.error("entry dead-lettered", stream=self.stream, entry_id=entry_id.decode(), error=error)
            done[entry_id] = [self._dead_letter(entry_id, fields, error, attempts, event.correlation_id)]
            dead_ids.add(entry_id)
        else:
            log.warning(
                "handler failed; entry stays pending and will be retried",
                stream=self.stream,
                entry_id=entry_id.decode(),
                attempt=attempts,
                error=f"{type(exc).__name__}: {exc}",
            )

    def _dead_letter(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        error: str,
        attempts: int,
        correlation_id: str | None,
    ) -> Publication:
        return Publication(
            streams.DEADLETTER,
            DeadLetter(
                correlation_id=correlation_id or f"deadletter-{entry_id.decode()}",
                producer=self.service,
                stream=self.stream,
                group=self.group,
                service=self.service,
                entry_id=entry_id.decode(),
                fields=fields_to_text(fields),
                error=error[:4000],
                attempts=attempts,
            ),
        )

    # ------------------------------------------------------------------ claiming

    async def claim_once(self) -> int:
        """Take over entries idle longer than ``claim_idle_ms`` and process them; returns how many."""
        assert self.redis is not None
        start: bytes | str = "0-0"
        total = 0
        while not self._stopping:
            reply = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=start,
                count=self.settings.batch_size,
            )
            next_id, claimed = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                log.warning("pending entries were trimmed before processing", stream=self.stream, count=len(deleted))
            claimed = [(eid, f) for eid, f in claimed if eid is not None]
            if claimed:
                counts = await self._delivery_counts([eid for eid, _ in claimed])
                self.stats.claimed += len(claimed)
                metrics.EVENTS_CLAIMED.labels(stream=self.stream, group=self.group).inc(len(claimed))
                log.info("claimed pending entries", stream=self.stream, count=len(claimed))
                await self.process(claimed, counts)
                total += len(claimed)
            if next_id in (b"0-0", "0-0"):
                return total
            start = next_id
            raise_if_cancel_requested()  # a cancellation this page's calls lost: no further page
        return total

    async def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        assert self.redis is not None
        rows = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 4 + 10,
            consumername=self.consumer,
        )
        # cast: entry ids are bytes, as no Vigil client decodes responses
        return {cast("bytes", r["message_id"]): int(r["times_delivered"]) for r in rows}

    async def remove_idle_consumers(self) -> list[str]:
        """Drop consumers of this group that own no pending entry and were idle for a long time
        (replicas that died, once their entries were claimed). Checked and deleted atomically, so a
        consumer that owns entries is never deleted (``XGROUP DELCONSUMER`` would drop them)."""
        assert self.redis is not None
        limit_ms = int(self.settings.consumer_idle_remove_s * 1000)
        script = self.redis.register_script(_REMOVE_IDLE_LUA)
        raw = await script(keys=[self.stream], args=[self.group, self.consumer, limit_ms])
        removed = [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
        if removed:
            log.info("removed idle consumers", stream=self.stream, group=self.group, consumers=removed)
        return removed

    async def _claim_loop(self) -> None:
        backoff = self.settings.claim_interval_s
        while not self._stopping:
            # cancelled while not stopping (asyncio.run's final cancel, a caller's), and the pass lost the
            # cancellation or the excepts below took it as an error: end here (vigil_shared.cancellation)
            raise_if_cancel_requested()
            await self._pause(backoff)
            if self._stopping:
                return
            try:
                await self.claim_once()
                await self.remove_idle_consumers()
                backoff = self.settings.claim_interval_s
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.error("claim loop error", stream=self.stream, error=str(exc))
                backoff = min(backoff * 2, 30.0)
            except (RedisError, OSError) as exc:
                log.warning("claim loop cannot reach Redis; retrying", stream=self.stream, error=str(exc))
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("claim loop error", stream=self.stream)
                backoff = min(backoff * 2, 30.0)

    # ------------------------------------------------------------------ self-healing

    async def ensure_group(self) -> None:
        assert self.redis is not None
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("consumer group created", stream=self.stream, group=self.group)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _watchdog(self) -> None:
        delay = 1.0
        while not self._stopping:
            raise_if_cancel_requested()  # as in _claim_loop
            await self._pause(delay)
            if self._stopping or self.subscriber_running:
                delay = 1.0
                continue
            try:
                await self.ensure_group()
                await self._subscriber.start()
                self.stats.restarts += 1
                log.warning("consume loop restarted", stream=self.stream, group=self.group)
                delay = 1.0
            except Exception as exc:
                delay = min(delay * 2, 30.0)
                log.warning(
                    "consume loop restart failed; will retry",
                    stream=self.stream,
                    error=str(exc),
                    retry_in_s=delay,
                )
