"""Delivery with guarantees: exactly once to the user on top of at-least-once streams.

Idempotency
    Every (alert_id, revision, subscription, channel) has an idempotency key (:func:`idempotency_key`,
    a hash: no secret is stored in it). Before sending, :class:`IdempotencyLedger` claims
    ``vigil:notify:idem:<key>`` atomically (a Lua script: absent, or a lease past its deadline ->
    a lease ``<deadline>|sending:<owner>`` that holds ``claim_ttl_s``: :data:`_LEASE`).
    A key already ``sent`` is skipped; a key ``sending`` by another replica is waited for (polling up
    to ``in_flight_wait_s``): when it turns ``sent`` we skip, when the claim disappears (the other
    replica gave up or its claim expired) we claim it ourselves; when it is still held after the wait,
    the outcome is ``skipped_in_flight`` and the notifier leaves the alert's entry pending
    (:class:`~vigil_notify.notifier.DeliveryStillInFlight`), so an owner that died between claim and
    send delays the delivery by up to ``claim_ttl_s`` but never loses it. A claim in this replica's own
    name that it is not sending right now (``Deliverer._sending``) is the orphan of a failed attempt
    of its own and is taken back at once. After the peer accepted the message
    the key is set to ``sent`` (kept ``sent_ttl_s``). A final failure releases the claim so a replay
    from the dead-letter stream can try again.

    The one duplicate window: a replica that crashes *after* the channel accepted the message and
    *before* ``sent`` is recorded. Its claim expires after ``claim_ttl_s`` and a redelivered stream
    entry sends again. No channel protocol lets us close that window (SMTP and HTTP have no
    two-phase commit); webhook receivers can close it themselves with the
    ``X-Vigil-Idempotency-Key`` header, which is the same on every attempt. A replica that stays up
    while *Redis* fails in that window keeps what it sent (``Deliverer._sent_here``): the marks are
    written before its next claims, and those deliveries are reported, not sent, when their entries
    come back.

Retries
    Each job runs in its own task (bounded by ``max_concurrency``), so a slow or failing channel
    never holds up the others. Every attempt runs under ``send_timeout_s``. Temporary failures
    (:class:`TemporaryFailure`, timeouts, unexpected exceptions) are retried after
    ``min(backoff_max_s, backoff_base_s * 2**(attempt-1))`` scaled by a random factor in [0.5, 1)
    ("equal jitter"), up to ``max_attempts``. Every attempt yields an event; the last failure of a
    job is ``NotificationFailed(permanent=True)`` with a :class:`DeadLetter` for the caller to publish.

Routing state (also in this module, all in Redis so replicas share it)
    :class:`RecipientLog` (who got an alert, for updates/cancels), :class:`Throttle` (sliding window
    per subscription and channel), :class:`DigestStore`, :class:`DeferredQueue` (quiet hours) and
    :class:`Deduplicator` (same content from several sources).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import orjson
from pydantic import TypeAdapter
from vigil_shared.envelope import encode_body
from vigil_shared.events import (
    DeadLetter,
    NotificationDelivered,
    NotificationFailed,
    new_event_id,
    utcnow,
)
from vigil_shared.streams import ALERTS_CLASSIFIED, GROUP_NOTIFY, key

from vigil_notify.channels.base import Channel, PermanentFailure, TemporaryFailure
from vigil_notify.channels.registry import ChannelRegistry
from vigil_notify.delivered import (
    ALL_DELIVERED_FIELDS,
    delivered_outcomes,
    new_object,
    sent_records,
    set_dict,
    set_extra,
    set_fields_set,
    set_private,
    slot_setter,
)
from vigil_notify.delivered import (
    DeliveryJob as DeliveryJob,  # (compiled by ``make native``; here before)
)
from vigil_notify.delivered import (
    DeliveryOutcome as DeliveryOutcome,  # (exported with the jobs, as before)
)
from vigil_notify.settings import NotifySettings
from vigil_notify.subscriptions import mask_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

Notification = NotificationDelivered | NotificationFailed


_UUID4_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_UUID4_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def _event_ids(n: int) -> list[str]:
    """``n`` of :func:`vigil_shared.events.new_event_id` (each 122 random bits with the UUID4 version
    and variant set) from one ``os.urandom`` call and one ``hex()``: a batch's delivered events take one system call,
    not one each, and the version and variant bytes of all of them are set by two translates."""
    if n <= 0:
        return []
    b = bytearray(os.urandom(16 * n))
    b[6::16] = b[6::16].translate(_UUID4_VERSION)
    b[8::16] = b[8::16].translate(_UUID4_VARIANT)
    h = b.hex()
    return [h[i : i + 32] for i in range(0, 32 * n, 32)]


_new_sha256: Callable[[], hashlib._Hash] = hashlib.sha256().copy
"""A fresh SHA-256 object: a copy of an empty one (never updated). ``hashlib.sha256(data)`` looks
the digest up by name in OpenSSL on every call (``EVP_MD_fetch``: ~8,500 instructions under
callgrind, against a few hundred for the copy); the digests are the same (tested)."""


def idempotency_key(alert_id: str, revision: int, subscription_id: str, channel_url: str) -> str:
    h = _new_sha256()
    h.update("\x1f".join((alert_id, str(revision), subscription_id, channel_url)).encode())
    return h.hexdigest()[:32]


@functools.lru_cache(maxsize=16384)
def channel_hash(channel_url: str) -> str:
    """A stable, secret-free handle for a channel URL (stored in Redis instead of the URL)."""
    return hashlib.sha256(channel_url.encode()).hexdigest()[:16]


_ALL_DELIVERED_FIELDS = ALL_DELIVERED_FIELDS
_new_model = new_object
_slot_setter = slot_setter
_set_dict, _set_fields_set, _set_extra, _set_private = set_dict, set_fields_set, set_extra, set_private


def _delivered_event(values: dict[str, Any]) -> NotificationDelivered:
    """A ``NotificationDelivered`` from ``values`` (every field, already valid: they come from
    validated models or from settings) without validation: what ``model_construct`` with every
    field sets, without its per-field loop (a tenth of its cost; tests compare it with the
    validated event). The four attributes are set by their descriptors' ``__set__`` (what
    ``object.__setattr__`` calls)."""
    event = _new_model(NotificationDelivered)
    _set_dict(event, values)
    _set_fields_set(event, _ALL_DELIVERED_FIELDS.copy())
    _set_extra(event, None)
    _set_private(event, None)
    return event


_occurred_at_json: Callable[[datetime], bytes] = TypeAdapter(datetime).dump_json
_DELIVERED_TYPE = NotificationDelivered.event_type
_orjson_dumps: Callable[[Any], bytes] = orjson.dumps
_Fragment = orjson.Fragment


def occurred_at_json(at: datetime) -> str:
    """The JSON of ``at`` as an event's ``occurred_at`` (pydantic's own datetime serialiser)."""
    return _occurred_at_json(at).decode()


def delivered_data(values: dict[str, Any], at_json: str, heads: dict[str, bytes] | None = None) -> bytes | None:
    """The ``__data__`` value (:func:`vigil_shared.envelope.encode_data`) of
    ``_delivered_event(values)``, byte for byte, written here by orjson (one C call, a quarter of
    the cost of joining escaped pieces) instead of by pydantic's serialiser: ``at_json`` is
    :func:`occurred_at_json` of ``values["occurred_at"]`` (made once per batch), ``heads`` caches
    the envelope's headers per correlation id (the deliveries of one alert share them). orjson
    escapes strings as pydantic does (``"``, ``\\``, control characters; the rest kept as UTF-8;
    tested); ``values`` holds every field of the model, in its order (as an event's ``__dict__``
    does). None when a value is not a plain
    ``str``/``int`` or cannot be UTF-8 encoded (a lone surrogate): the stream worker then encodes
    the event itself (and reports what pydantic reports)."""
    return _delivered_body({**values, "occurred_at": _Fragment(at_json)}, heads)


def _delivered_body(values: dict[str, Any], heads: dict[str, bytes] | None) -> bytes | None:
    """:func:`delivered_data` of ``values`` whose ``occurred_at`` already is the Fragment of its
    JSON (every field, in the model's order): the deliverer builds that dict once and then hands it,
    ``occurred_at`` set back to the datetime, to the event (one dict per delivery, not two)."""
    rev, attempt, version = values["revision"], values["attempt"], values["schema_version"]
    if type(rev) is not int or type(attempt) is not int or type(version) is not int:
        return None
    cid = values["correlation_id"]
    if not (
        type(values["event_id"]) is type(cid) is type(values["producer"]) is type(values["alert_id"])
        is type(values["subscription_id"]) is type(values["channel"]) is type(values["kind"])
        is type(values["idempotency_key"]) is type(values["reason"]) is str
    ):  # fmt: skip
        return None
    try:
        body = _orjson_dumps(values)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate
        return None
    if heads is None:
        return encode_body(cid, _DELIVERED_TYPE, body)
    head = heads.get(cid)
    if head is None:
        head = heads[cid] = encode_body(cid, _DELIVERED_TYPE, b"")
    return head + body


_flatten = chain.from_iterable
_json_array: Callable[[Any], bytes] = orjson.dumps
"""The JSON array of a batch script's items (strings, and lists of strings), in one C call."""

# How the claim and "sent" scripts take their idempotency keys: the whole keys, written by Python
# (C joins), in one argument that Lua cuts with string.sub. Redis's Lua builds every string it is
# handed by hashing each of its bytes; the earlier format (the names as a JSON array, each key then
# built in Lua as ``prefix .. idem``) made two strings a key and paid cjson's parse (~1,800 more
# instructions a key than one string.sub, measured):
#   width > 0: every key is ``width`` bytes (always, for idempotency keys: they share one length);
#   width 0: the keys are joined by ``sep``, a character that no key holds (_joined).
# (The other batch scripts keep JSON: their items are not of one width, and cutting them with
# string.find costs Redis about what cjson does, while writing their keys costs Python more.)


def _joined(fields: list[str]) -> tuple[str, str]:
    """(separator, ``fields`` joined by it): "\n", or when a field holds one, the first character
    that none does (a control character, as a rule; any code point is safe: UTF-8 is self-synchronising,
    so a character's bytes only ever match at a character)."""
    joined = "\n".join(fields)
    if joined.count("\n") == len(fields) - 1:
        return "\n", joined
    return _joined_by_other(fields)


def _joined_by_other(fields: list[str]) -> tuple[str, str]:
    text = "".join(fields)
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:  # surrogates: no UTF-8 encoding
            continue
        sep = chr(code)
        if sep not in text:
            return sep, sep.join(fields)
    raise ValueError("the fields hold every character: no separator left")


def _keys(prefix: str, names: list[str]) -> tuple[int, str, str]:
    """(width, separator, data) of the keys ``prefix + name`` of ``names`` (at least one) for a
    batch script: fixed-width when every name has the same length in ASCII (always, for idempotency
    keys; width 0 and separator "" otherwise), else joined by a separator (:func:`_joined`)."""
    blob = prefix + prefix.join(names)
    if blob.isascii() and len(set(map(len, names))) == 1:
        return len(prefix) + len(names[0]), "", blob
    sep, joined = _joined([prefix + name for name in names])
    return 0, sep, joined


# ----------------------------------------------------------------------------- idempotency ledger

# A claim is a lease: the key holds ``<deadline>|sending:<owner>`` (the deadline in Unix milliseconds,
# claim_ttl_s after the claim or its last extension) and lives claim_ttl_s + sent_ttl_s, so the "sent"
# mark that replaces the lease keeps the key's TTL (SET ... KEEPTTL) and still lives at least
# sent_ttl_s after the send: no expiry to write per mark (Redis rewrites every SET with a TTL into
# SET ... PXAT for propagation and updates the key's expiry: bench_notify_redis -n 3000, ~4k of ~11k
# instructions per mark). A lease past its deadline counts as absent: the next claim takes it over
# (where the key itself expired before). A lease without a deadline ("sending:<owner>", what releases
# before this format wrote, with the key's TTL as the lease) is honoured as held until its key expires.
#
# ARGV (every claim script): the token ("sending:<owner>"), claim_ttl_s, sent_ttl_s, then its own.
_LEASE = """
local call = redis.call
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = string.format('%d', now + tonumber(ARGV[2]) * 1000) .. '|' .. ARGV[1]
local life = string.format('%d', (tonumber(ARGV[2]) + tonumber(ARGV[3])) * 1000)
-- who holds key k after this claim: nil (the lease is ours now), "sent" or "sending:<owner>"
local function claim(k)
  local held = call('SET', k, lease, 'NX', 'GET', 'PX', life)
  if not held then
    return nil
  end
  local deadline, owner = string.match(held, '^(%d+)|(.*)$')
  if deadline == nil then
    return held  -- "sent", or a lease of the earlier format (its key's TTL is its deadline)
  end
  if tonumber(deadline) < now then  -- the lease ran out: as if absent
    call('SET', k, lease, 'PX', life)
    return nil
  end
  return owner
end
"""
"""What the claim scripts share: the lease written (its deadline from Redis's clock) and ``claim(k)``."""

_CLAIM = _LEASE + """
return claim(KEYS[1]) or 'claimed'
"""
# The batch scripts take their items in one long argument each (JSON, or the keys joined: _keys):
# packing an argument costs the client ~0.2 µs even in C (~30 per alert as separate keys and values),
# one long string next to nothing. Every key is still touched exactly as the one-key scripts do, in
# order. (Keys not passed as KEYS are fine for a standalone Redis; Vigil's multi-key scripts never ran
# on a cluster anyway, their keys span slots.)
#
# The batch scripts' replies are sparse: only the items that are not the usual case (a claim already
# held, a fingerprint already stored, an alert over the throttle limit), as (position, value) or
# positions; a reply of one element per item cost the client a string object and a decode each.
#
# ARGV: the token, claim_ttl_s, sent_ttl_s (_LEASE), the number of keys, then the keys: their width,
# separator and data (_keys).
_KEY_READER = """
local function key_list(n, w, sep, data)
  local keys = {}
  if w > 0 then
    -- fixed width: struct.unpack cuts up to 200 keys per call ('c<w>' each, then the next position)
    local unpack_, pos, i, fmt = struct.unpack, 1, 0, nil
    while i < n do
      local m = n - i
      if m > 200 then m = 200 end
      if fmt == nil or m < 200 then fmt = string.rep('c' .. w, m) end
      local got = {unpack_(fmt, data, pos)}
      for j = 1, m do keys[i + j] = got[j] end
      pos = got[m + 1]
      i = i + m
    end
  else
    local find, sub = string.find, string.sub
    local pos, step, last = 1, #sep, #data + 1
    for i = 1, n do
      local e = find(data, sep, pos, true) or last
      keys[i] = sub(data, pos, e - 1)
      pos = e + step
    end
  end
  return keys
end
"""
"""The Lua function both key-list scripts cut their keys with (see :func:`_keys`): ``key_list(n, w,
sep, data)`` returns the ``n`` keys, in order (fixed width ``w``, else ``sep`` between keys). Keys of
one width are cut by ``struct.unpack`` (Redis's Lua has the struct library), up to 200 a call: a
C call per 200 keys instead of a ``string.sub`` (and a closure call) per key."""

_CLAIM_MANY = _KEY_READER + _LEASE + """
local n = tonumber(ARGV[4])
local keys = key_list(n, tonumber(ARGV[5]), ARGV[6], ARGV[7])
local out = {}
for i = 1, n do
  local held = claim(keys[i])
  if held then
    out[#out + 1] = i
    out[#out + 1] = held
  end
end
return out
"""
_HOLDS = """
-- whether key k holds the token's lease (of either format; its deadline not checked: the caller's own)
local function holds(k, token)
  local held = redis.call('GET', k)
  return held == token or (held and string.match(held, '^%d+|(.*)$') == token)
end
"""
_RELEASE = _HOLDS + """
if holds(KEYS[1], ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
"""
# ARGV: as _LEASE's. The lease's deadline moves to claim_ttl_s from now, the key's life with it.
_EXTEND = _HOLDS + """
if holds(KEYS[1], ARGV[1]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local lease = string.format('%d', now + tonumber(ARGV[2]) * 1000) .. '|' .. ARGV[1]
  redis.call('SET', KEYS[1], lease, 'PX', string.format('%d', (tonumber(ARGV[2]) + tonumber(ARGV[3])) * 1000))
  return 1
end
return 0
"""


def _lease_state(raw: str) -> tuple[str, int | None]:
    """A ledger value as (state, lease deadline in Unix ms or None): ``("sending:<owner>", deadline)``
    for a lease (:data:`_LEASE`), else the value itself ("sent", or a lease of the earlier format)."""
    head, bar, rest = raw.partition("|")
    if bar and head.isdigit() and head.isascii():
        return rest, int(head)
    return raw, None

SENT = "sent"

# The "sent" marks and recipient records of many deliveries in one call (what _queue_sent does per
# delivery in a pipeline). ARGV: "sent", its TTL, the recipients TTL, the number of idempotency keys,
# the keys (width, separator, data: _keys), the recipients key prefix, then the records, [original
# alert key, field, value, field, value, ...] per recipients hash, in one of two forms (_records):
#   ARGV[9] JSON [number of strings of each record], ARGV[10] every record's strings, each ended by a
#   NUL byte (UTF-8): cut by struct.unpack's 's' (memchr: no JSON to scan, a C call per record). A
#   string holding a NUL would cut into more strings than the counts say, so data would be left at
#   the end: the script checks that before writing anything and then replies -1 (nothing done);
#   ARGV[9] "json", ARGV[10] JSON [[original alert key, field, value, ...], ...]: the form sent then.
# (ARGV[9] "": no records.) Reply: the number of keys marked, or -1.
_MARK_MANY = _KEY_READER + """
local sent, sent_ttl, rec_ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local rec_prefix, form, data = ARGV[8], ARGV[9], ARGV[10]
local recs = nil
if form ~= '' and form ~= 'json' then
  -- cut every record before any write: a string holding a NUL would leave data over at the end
  local unpack_, fmts, pos = struct.unpack, {}, 1
  recs = {}
  for _, c in ipairs(cjson.decode(form)) do
    local fmt = fmts[c]
    if fmt == nil then
      fmt = string.rep('s', c)
      fmts[c] = fmt
    end
    local rec = {unpack_(fmt, data, pos)}
    pos = rec[c + 1]
    recs[#recs + 1] = rec
  end
  if pos ~= #data + 1 then
    return -1  -- nothing written: the caller sends the records as JSON
  end
end
local keys, call = key_list(n, tonumber(ARGV[5]), ARGV[6], ARGV[7]), redis.call
for i = 1, n do
  -- the key of a lease lives sent_ttl_s longer than the lease (_LEASE): its TTL is kept, no expiry
  -- written; a key gone meanwhile (evicted) gets sent_ttl_s
  if not call('SET', keys[i], sent, 'XX', 'KEEPTTL') then
    call('SET', keys[i], sent, 'EX', sent_ttl)
  end
end
local function record(rec, c)
  local k = rec_prefix .. rec[1]
  for x = 2, c, 200 do  -- one HSET per hash (in slices: unpack has a stack limit)
    call('HSET', k, unpack(rec, x, math.min(x + 199, c)))
  end
  call('EXPIRE', k, rec_ttl)
end
if form == 'json' then
  for _, rec in ipairs(cjson.decode(data)) do
    record(rec, #rec)
  end
elseif recs then
  for _, rec in ipairs(recs) do
    record(rec, #rec - 1)  -- (its last value: the next position)
  end
end
return n
"""

_NUL_RECORD_MAX = 4000
"""A record of more strings than this goes as JSON: struct.unpack returns each string on Lua's C
stack (at most ~8,000 values)."""


def _records(packed: list[Any]) -> tuple[str | bytes, str | bytes]:
    """:data:`_MARK_MANY`'s ARGV[9] and ARGV[10] for the records ``packed`` (``[[original, field,
    value, ...], ...]``, :func:`~vigil_notify.delivered.sent_records`): the records' counts and
    their strings NUL-ended (UTF-8; the script finds a string holding a NUL itself, the caller then
    sends :func:`_json_records`), or those when a record is too long or a string cannot be encoded
    (a lone surrogate: JSON reports it, as before)."""
    if not packed:
        return "", ""
    counts = list(map(len, packed))
    if max(counts) <= _NUL_RECORD_MAX:
        try:  # (the empty string last: the last string NUL-ended too, without another copy)
            return _json_array(counts), "\0".join([*map("\0".join, packed), ""]).encode()
        except UnicodeEncodeError:
            pass
    return _json_records(packed)


def _json_records(packed: list[Any]) -> tuple[str, bytes]:
    """:data:`_MARK_MANY`'s ARGV[9] and ARGV[10] for the records ``packed`` as JSON."""
    return "json", _json_array(packed)


def _expand(sparse: list[Any], n: int, usual: str) -> list[str]:
    """A batch script's sparse reply (position from 1, value, ...) as one value per item: ``usual``
    where the reply names none."""
    out = [usual] * n
    for x in range(0, len(sparse), 2):
        value = sparse[x + 1]
        out[sparse[x] - 1] = value.decode() if isinstance(value, bytes) else str(value)
    return out


class IdempotencyLedger:
    def __init__(self, redis: Redis, settings: NotifySettings, owner: str | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.token = f"sending:{owner or uuid.uuid4().hex}"
        self._claim = redis.register_script(_CLAIM)
        self._claim_many = redis.register_script(_CLAIM_MANY)
        self._claims: Coalescer[str, str] = Coalescer(self._claim_keys, on_abandoned=self._abandoned)
        self._release = redis.register_script(_RELEASE)
        self._extend = redis.register_script(_EXTEND)

    @staticmethod
    def redis_key(idem_key: str) -> str:
        return key("notify", "idem", idem_key)

    async def claim(self, idem_key: str) -> str:
        """``claimed`` (ours now), ``sent``, or ``sending:<other owner>``."""
        s = self.settings
        res = await self._claim(keys=[self.redis_key(idem_key)], args=[self.token, s.claim_ttl_s, s.sent_ttl_s])
        return res.decode() if isinstance(res, bytes) else str(res)

    async def claim_batched(self, idem_key: str) -> str:
        """:meth:`claim`, coalesced with the claims other tasks make in the same event-loop turn
        into one script call (each key still claimed atomically, exactly as :meth:`claim` does)."""
        return (await self._claims.submit([idem_key]))[0]

    async def claim_many(self, idem_keys: list[str]) -> list[str]:
        """:meth:`claim` of every key, in order, in one script call (coalesced like
        :meth:`claim_batched`, so claims made for a caller cancelled meanwhile are given back)."""
        if not idem_keys:
            return []
        return await self._claims.submit(idem_keys)

    async def _claim_keys(self, idem_keys: list[str]) -> list[str]:
        s = self.settings
        raw = await self._claim_many(
            args=[self.token, s.claim_ttl_s, s.sent_ttl_s, len(idem_keys), *_keys(self.redis_key(""), idem_keys)]
        )
        return _expand(raw, len(idem_keys), "claimed")

    async def _abandoned(self, idem_keys: list[str], states: list[str]) -> None:
        """Claims made for callers that were cancelled meanwhile: give the keys back."""
        for k, state in zip(idem_keys, states, strict=True):
            if state == "claimed":
                with contextlib.suppress(Exception):
                    await self.release(k)

    async def extend(self, idem_key: str) -> bool:
        """Renew this owner's claim of ``idem_key``; False when the key is no longer this owner's
        claim (marked sent, released or taken over since it was read)."""
        s = self.settings
        return bool(await self._extend(keys=[self.redis_key(idem_key)], args=[self.token, s.claim_ttl_s, s.sent_ttl_s]))

    async def mark_sent(self, idem_key: str) -> None:
        await self.redis.set(self.redis_key(idem_key), SENT, ex=self.settings.sent_ttl_s)

    async def release(self, idem_key: str) -> None:
        await self._release(keys=[self.redis_key(idem_key)], args=[self.token])

    async def state(self, idem_key: str) -> str | None:
        """``sent``, ``sending:<owner>`` (a lease in time) or None (absent, or a lease run out)."""
        raw = await self.redis.get(self.redis_key(idem_key))
        if raw is None:
            return None
        state, deadline = _lease_state(raw.decode() if isinstance(raw, bytes) else raw)
        if deadline is not None:
            sec, usec = await self.redis.time()
            if deadline < int(sec) * 1000 + int(usec) // 1000:
                return None
        return state


T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Requests from concurrent tasks in the same event-loop turn, handed to ``batch_fn`` as one
    list (in arrival order); each caller gets the results for its own items.

    ``batch_fn`` must treat its items exactly as the same calls one after another would (e.g. a
    Lua script that loops over its keys), so coalescing changes the number of round trips and
    nothing else. When ``batch_fn`` fails, every caller of that turn gets the exception."""

    def __init__(
        self,
        batch_fn: Callable[[list[T]], Awaitable[list[R]]],
        *,
        on_abandoned: Callable[[list[T], list[R]], Awaitable[None]] | None = None,
    ) -> None:
        self._fn = batch_fn
        self._on_abandoned = on_abandoned
        self._queue: list[tuple[list[T], asyncio.Future[list[R]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, items: list[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[R]] = loop.create_future()
        self._queue.append((items, fut))
        if len(self._queue) == 1:
            self._flusher = loop.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        flat = list(_flatten([items for items, _ in batch]))  # every caller's items, in arrival order
        try:
            results = await self._fn(flat) if flat else []
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        i = 0
        for items, fut in batch:
            mine = results[i : i + len(items)]
            i += len(items)
            if not fut.done():
                fut.set_result(mine)
            elif self._on_abandoned is not None:
                await self._on_abandoned(items, mine)


class PipelineBatcher:
    """Commands from concurrent tasks sent in one non-transactional pipeline per event-loop turn.

    :meth:`run` returns once the caller's commands have been executed by Redis (as an ``await
    pipe.execute()`` of its own would), so ordering relative to the caller's next step is kept;
    an error fails every caller of that turn."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queue: list[tuple[Callable[[Any], None], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, queue_commands: Callable[[Any], None]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((queue_commands, fut))
        if len(self._queue) == 1:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for queue_commands, _ in batch:
                    queue_commands(pipe)
                await pipe.execute()
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)


# ----------------------------------------------------------------------------- jobs and outcomes


# ----------------------------------------------------------------------------- recipients


class RecipientLog:
    """Who received an alert: ``vigil:notify:recipients:<original key>`` hash of
    ``<subscription_id>|<channel hash>`` -> the match reason."""

    def __init__(self, redis: Redis, settings: NotifySettings) -> None:
        self.redis = redis
        self.settings = settings

    @staticmethod
    def redis_key(original: str) -> str:
        return key("notify", "recipients", original)

    async def record(self, originals: Sequence[str], subscription_id: str, channel_url: str, reason: str) -> None:
        if not originals:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            self.queue_record(pipe, originals, subscription_id, channel_url, reason)
            await pipe.execute()

    def queue_record(
        self, pipe: Any, originals: Sequence[str], subscription_id: str, channel_url: str, reason: str
    ) -> None:
        """Add :meth:`record`'s commands to a pipeline the caller executes."""
        member = f"{subscription_id}|{channel_hash(channel_url)}"
        for original in originals:
            pipe.hset(self.redis_key(original), member, reason)
            pipe.expire(self.redis_key(original), self.settings.recipients_ttl_s)

    async def recipients(self, originals: Sequence[str]) -> dict[tuple[str, str], str]:
        """{(subscription_id, channel hash): reason} over all ``originals``."""
        out: dict[tuple[str, str], str] = {}
        for original in originals:
            raw = await self.redis.hgetall(self.redis_key(original))
            for member, reason in raw.items():
                m = member.decode() if isinstance(member, bytes) else member
                sub_id, _, chash = m.partition("|")
                out.setdefault((sub_id, chash), reason.decode() if isinstance(reason, bytes) else reason)
        return out


# ----------------------------------------------------------------------------- dedup across sources

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def _normalise_regex(raw: str) -> str:
    """The reference normalisation: casefold, every character neither a word character nor
    whitespace becomes a space, whitespace runs become one space, stripped."""
    return _WS.sub(" ", _PUNCT.sub(" ", raw.casefold())).strip()


class _PunctToSpace(dict[int, str]):
    r"""``str.translate`` table of :func:`_normalise_regex`'s character rule, filled on demand:
    ``\w`` is ``isalnum()`` or ``_`` and ``\s`` is ``isspace()``, exactly as ``re`` decides them."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        out = ch if ch.isalnum() or ch == "_" or ch.isspace() else " "
        self[code] = out
        return out


_PUNCT_TO_SPACE = _PunctToSpace()
# ASCII in one bytes.translate: lower-case letters (casefold of ASCII), keep digits and "_", every
# other byte a space (whitespace, \x1c-\x1f included, collapses either way)
_ASCII_NORM = bytes(ord(chr(b).lower()) if chr(b).isalnum() or chr(b) == "_" else 32 for b in range(256))


# text with a few other characters: ASCII bytes as _ASCII_NORM maps them, the others' UTF-8 bytes kept
_MIXED_NORM = _ASCII_NORM[:128] + bytes(range(128, 256))
_ASCII_BYTES = bytes(range(128))
_OTHER_BYTES_MAX = 256
"""At most this many bytes of non-ASCII characters: :func:`_normalise_mixed`, else the str path."""
_OTHER_CHANGED_MAX = 8
"""At most this many distinct non-ASCII characters to rewrite (a replace each): else the str path."""
_OTHER_NORM_MAX = 16384
"""Characters :data:`_OTHER_NORM` keeps at most (then it starts again, empty)."""
_NOT_HANDLED = b"\0"
"""(:data:`_OTHER_NORM`: a character whose rewrite :func:`_normalise_mixed` leaves to the str path.)"""


class _OtherNorm(dict[str, bytes | None]):
    """A non-ASCII character -> the UTF-8 of what :func:`_normalise_regex`'s rules make of it:
    its casefold (``str.casefold`` folds each character alone, without context), each character of
    that kept when a word character (``isalnum()`` or ``_``), else a space (a separator, whitespace
    or not: they all collapse alike). None: the character stays as it is. :data:`_NOT_HANDLED`
    when the rewrite holds a non-ASCII character that is not itself kept as it is (rewriting such
    characters one replace at a time could then depend on the order of the replaces)."""

    def __missing__(self, ch: str) -> bytes | None:
        if len(self) >= _OTHER_NORM_MAX:  # (bounded: texts could bring every code point)
            self.clear()
        out = "".join(c if c.isalnum() or c == "_" else " " for c in ch.casefold())
        rep: bytes | None
        if out == ch:
            rep = None
        elif all(c.isascii() or (c.casefold() == c and c.isalnum()) for c in out):
            rep = out.encode()
        else:
            rep = _NOT_HANDLED
        self[ch] = rep
        return rep


_OTHER_NORM = _OtherNorm()


def _normalise_mixed(raw: str) -> bytes | None:
    """:func:`_normalise_regex` of ``raw`` (not ASCII), UTF-8 encoded, for a text with a few non-ASCII
    characters (a quote mark, an accent, a dash): the ASCII bytes by one ``bytes.translate``, each
    distinct non-ASCII character by one replace of its UTF-8 bytes by :data:`_OTHER_NORM`'s (UTF-8 is
    self-synchronising: its bytes only match at that character; the rewrites bring only ASCII and
    characters kept as they are, so the order of the replaces does not matter), then the runs of
    spaces collapsed as in :func:`content_fingerprint`. None when the text has more non-ASCII than
    :data:`_OTHER_BYTES_MAX` or :data:`_OTHER_CHANGED_MAX` allow, a character it cannot encode (a lone
    surrogate) or one left to the str path: the caller then takes that path."""
    try:
        encoded = raw.encode()
    except UnicodeEncodeError:
        return None
    others = encoded.translate(None, _ASCII_BYTES)  # (whole characters: UTF-8 puts no ASCII inside one)
    if len(others) > _OTHER_BYTES_MAX:
        return None
    norm = encoded.translate(_MIXED_NORM)
    changed = 0
    for ch in set(others.decode()):
        rep = _OTHER_NORM[ch]
        if rep is None:
            continue
        changed += 1
        if rep is _NOT_HANDLED or changed > _OTHER_CHANGED_MAX:
            return None
        norm = norm.replace(ch.encode(), rep)
    # the separators are all b" " now, and no NUL is left (see content_fingerprint)
    norm = norm.replace(b"  ", b" \0")
    if norm.rfind(b"\0 ") != -1:
        norm = norm.replace(b"\0 ", b"\0\0")
    return norm.replace(b"\0", b"").strip(b" ")


def content_fingerprint(title: str, text: str) -> str:
    """Hash of the normalised title and text: the same warning re-posted by another source.

    The same normalisation as :func:`_normalise_regex` (tests compare them over every code
    point), several times faster: one ``bytes.translate`` for ASCII text (and for the ASCII of a
    text with a few other characters: :func:`_normalise_mixed`), a cached translate table
    otherwise."""
    raw = f"{title}\n{text}"
    if raw.isascii():
        # after the translate the only whitespace is b" " (and no NUL is left: it is not a word
        # character): collapsing its runs and stripping it is what b" ".join(norm.split()) does,
        # without a bytes object per word. Three C passes, none of which changes the length
        # until the last: each pair of spaces (left to right, not overlapping: a run of k spaces
        # becomes " \0" * (k // 2), then " " if k is odd) gets its second space marked by a NUL;
        # a run of 3 or more leaves a NUL before a space (rare: rfind, whose first byte, the NUL,
        # is rare, scans fastest), which the second replace marks too (the run is then " " and
        # NULs); deleting the NULs leaves one space per run. A replace by a string of the same
        # length is one search; one to a shorter string first counts the matches (a second
        # search), and the "  " loop it replaces took a third search (find) to end.
        norm = raw.encode().translate(_ASCII_NORM).replace(b"  ", b" \0")
        if norm.rfind(b"\0 ") != -1:
            norm = norm.replace(b"\0 ", b"\0\0")
        norm = norm.replace(b"\0", b"").strip(b" ")
    else:
        mixed = _normalise_mixed(raw)
        if mixed is None:
            mixed = " ".join(raw.casefold().translate(_PUNCT_TO_SPACE).split()).encode()
        norm = mixed
    h = _new_sha256()
    h.update(norm)
    return h.hexdigest()[:24]


# Content dedup state: one hash per fingerprint, ``vigil:notify:fpsubs:<fingerprint>``, a field per
# subscription id holding ``<deadline>|<alert id>`` (the deadline in Unix milliseconds: the stored id
# counts until then, fingerprint_ttl_s after it was stored, as the key per (subscription,
# fingerprint) with its own TTL did before; a field past its deadline counts as absent and is
# overwritten). The key expires at the latest deadline written (PEXPIREAT, which Redis keeps as it is
# given, where EXPIRE is rewritten to PEXPIREAT per call). The matches of one alert are one
# fingerprint, so their marks land in one key: an HSETNX each and one PEXPIREAT, instead of a
# SET NX GET EX each (Redis rewrites every SET with a TTL for propagation, and adds a key and an
# expiry each). bench_notify_redis.py -n 3000 --redis-callgrind: the dedup script 48.8k -> 39.0k
# Redis instructions per alert; Redis's work for notify 952.7M -> 905.0M (fewer keys: the other
# scripts' key lookups got cheaper too).
#
# ARGV[1]: JSON [fingerprint, alert id, [subscription id, ...], fingerprint, alert id, [...], ...]: the
# items grouped by runs of one (fingerprint, alert id) (the matches of one alert: its fingerprint and
# id are handed to Lua once, not once per matched subscription); ARGV[2]: key prefix; ARGV[3]: TTL (s).
# Reply: (position from 1, stored alert id) of each item whose field already held one in time.
# (Per item: HSETNX the field; when it was there, HGET it: the stored id, or when past its deadline,
# the field set as new.)
_FIRST_MANY = """
local groups = cjson.decode(ARGV[1])
local prefix, call = ARGV[2], redis.call
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = string.format('%d', now + tonumber(ARGV[3]) * 1000)
local find, sub = string.find, string.sub
local out = {}
local pos = 0
for g = 1, #groups, 3 do
  local k = prefix .. groups[g]
  local v = deadline .. '|' .. groups[g + 1]
  local wrote = false
  for _, sid in ipairs(groups[g + 2]) do
    pos = pos + 1
    if call('HSETNX', k, sid, v) == 1 then
      wrote = true
    else
      local held = call('HGET', k, sid)
      local bar = find(held, '|', 1, true)
      if tonumber(sub(held, 1, bar - 1)) < now then  -- past its deadline: as if absent
        call('HSET', k, sid, v)
        wrote = true
      else
        out[#out + 1] = pos
        out[#out + 1] = sub(held, bar + 1)
      end
    end
  end
  if wrote then
    call('PEXPIREAT', k, deadline)
  end
end
return out
"""


def _dedup_groups(items: list[tuple[str, str, str]]) -> list[Any]:
    """:data:`_FIRST_MANY`'s items, (subscription id, fingerprint, alert id) each: ``[fingerprint,
    alert id, [subscription id, ...], ...]``, one group per run of items with one fingerprint and
    alert id, in order."""
    groups: list[Any] = []
    sids: list[str] = []
    last_fp: str | None = None
    last_aid: str | None = None
    for sid, fp, aid in items:
        if fp == last_fp and aid == last_aid:
            sids.append(sid)
        else:
            sids = [sid]
            groups += (fp, aid, sids)
            last_fp, last_aid = fp, aid
    return groups


class Deduplicator:
    """The same content (:func:`content_fingerprint`) sent to a subscriber once per
    ``fingerprint_ttl_s``: per fingerprint, a hash of subscription id -> the first alert id that
    carried it, with that entry's deadline (:data:`_FIRST_MANY`).

    Upgrade note: releases before this format kept a string key per (subscription, fingerprint),
    ``vigil:notify:fp:<subscription id>:<fingerprint>``; they are no longer read (they expire on
    their own within ``fingerprint_ttl_s``). So for up to ``fingerprint_ttl_s`` after the upgrade
    (and between replicas of the two releases during a rolling update), the same content re-posted
    under another alert id may reach a subscriber once more. The exactly-once delivery of each alert
    (the idempotency ledger) is not affected."""

    def __init__(self, redis: Redis, settings: NotifySettings) -> None:
        self.redis = redis
        self.settings = settings
        self._script = redis.register_script(_FIRST_MANY)
        self._coalesced: Coalescer[tuple[str, str, str], str] = Coalescer(self._run_many)

    async def _run_many(self, items: list[tuple[str, str, str]]) -> list[str]:
        """(subscription id, fingerprint, alert id) each: store the alert id for the subscriber
        unless one is stored in time; "" where stored, else the stored id."""
        raw = await self._script(
            args=[_json_array(_dedup_groups(items)), self.redis_key(""), self.settings.fingerprint_ttl_s]
        )
        return _expand(raw, len(items), "")

    @staticmethod
    def redis_key(fingerprint: str) -> str:
        """The hash of the subscribers that got ``fingerprint``'s content (see :data:`_FIRST_MANY`)."""
        return key("notify", "fpsubs", fingerprint)

    async def first_for(self, subscription_id: str, fingerprint: str, alert_id: str) -> str | None:
        """None when ``alert_id`` is the first with this content for the subscriber (or is the
        same alert again); else the alert_id that already carried it."""
        seen_id = (await self._run_many([(subscription_id, fingerprint, alert_id)]))[0]
        return None if seen_id in ("", alert_id) else seen_id

    async def first_for_many(
        self, subscription_ids: Sequence[str], fingerprint: str, alert_id: str
    ) -> dict[str, str | None]:
        """:meth:`first_for` for several subscribers: one script call (SET NX, else GET, per key, in
        order), shared with other alerts' checks of the same event-loop turn."""
        if not subscription_ids:
            return {}
        seen = await self._coalesced.submit([(sid, fingerprint, alert_id) for sid in subscription_ids])
        return {
            sid: None if seen_id in ("", alert_id) else seen_id
            for sid, seen_id in zip(subscription_ids, seen, strict=True)
        }

    async def first_for_batch(self, checks: Sequence[tuple[str, str, str]]) -> list[str | None]:
        """:meth:`first_for` of several (subscription_id, fingerprint, alert_id), applied in order
        (the same effect as one call each), in one script call."""
        if not checks:
            return []
        seen = await self._coalesced.submit(list(checks))
        if seen.count("") == len(seen):  # the usual case: no key held an id yet
            return [None] * len(seen)
        return [None if s in ("", aid) else s for s, (_, _, aid) in zip(seen, checks, strict=True)]


# ----------------------------------------------------------------------------- throttle and digests

_THROTTLE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('ZRANK', KEYS[1], ARGV[2])
"""


# ARGV[1]: JSON [now, [subscription id, channel hash, member, ...], now, [...], ...]: per allow_many call
# coalesced into this one, its instant once (the text of the float, what the one-key script gets) and
# its items; ARGV[2]: key prefix; ARGV[3]: the window; ARGV[4]: throttle_max. An item is
# allowed when the member's rank in the window is below throttle_max; the reply lists the others.
#
# A key met again at the same instant is not trimmed again (the cut-off is the same, and every member
# added since scores ``now``), and each key's EXPIRE is set once at the end (the script is atomic: the
# same TTL from the same instant): the one-key script's effects, with a shared subscription's
# window (every alert of a batch) trimmed once instead of once per alert. The rank is only asked for
# when the window holds more than throttle_max members (a rank is below the window's size): the
# size is read once per key (ZCARD) and kept up to date from what ZREMRANGEBYSCORE and ZADD report.
# The reply: the positions (from 1) of the items not allowed (sparse, as the other batch scripts').
#
# When the items are one allow_many call's (coalesced calls bring several), the
# items are grouped per window (windows in the order they first appear, members in item order): a
# window that stays within throttle_max with all of its members gets them in one ZADD NX (which adds
# them as one ZADD NX each would, and allows each: a rank is below the window's size); the other
# windows' items then go one by one, in item order, as above. Windows are independent and the
# script atomic, so only the order of the writes between windows changes. The catch-all
# subscription's window took one ZADD per alert of a batch: bench_notify_redis -n 3000 (throttle_max
# 1e9, so every window is within it), Redis 1,001.5M -> 987.7M, the throttle script 46.0k -> 42.6k
# instructions per alert. A window over the limit gains nothing (its ranks are asked for one by one).
#
# Encoding: Redis keeps a sorted set of up to 128 members (zset-max-listpack-entries) as a listpack,
# where ZADD finds a new member's place by walking the members from the lowest score and parsing each
# score from its text (strtod of 17 digits: ~1,200 instructions a member). A window's new member
# scores highest, so every ZADD walked the whole window (notify's benchmark: ZADD was 19% of Redis's
# instructions, at 2.1 calls per alert). A window met with ``_SKIPLIST_FROM`` members or more is moved
# to the skiplist encoding (O(log n) ZADD/ZRANK, no parsing) by adding and removing a member longer
# than a listpack takes (zset-max-listpack-value, 64 bytes by default; Redis converts on the add and
# never converts back on a removal). Both happen inside this atomic script, so no client ever sees
# that member, and it cannot be a real one (those are "alert id:revision"). The members, scores, ranks
# and TTL are the same, and the previous release reads the key as before; the cost is memory (~140
# bytes a member instead of ~40, for the windows past the threshold). A restart may load a small
# window as a listpack again: the next call converts it back.
#
# The threshold is low: a listpack ZADD costs a strtod per member already there (~1,500 instructions
# each), a skiplist one a few thousand in all, and the conversion (OBJECT ENCODING, ZADD, ZREM: three
# calls) about what a dozen such strtods do; a window of 4 members or more gets at least that back
# within a few alerts. A window that grows to ``_SKIPLIST_GROWN`` members within one call is converted
# there and then: a window new in a batch (the catch-all subscription's, in the first batch after a
# start) otherwise took every ZADD of that batch as a listpack up to Redis's own conversion at 128
# members. Bench (bench_notify_redis.py -n 3000, Redis instructions for notify): 1,037M at 16 and
# first touch only; 1,025M converting at 32 within a call; 1,008M at 8/16; 1,001M at 4/9. The memory
# reported by the bench is unchanged (its windows are large); a small window costs ~100 bytes a member
# more once it has 4.
_SKIPLIST_FROM = 4
_SKIPLIST_GROWN = 9
"""A window that grows to this many members during one call is converted in that call. More than
``_SKIPLIST_FROM + 4``: a window met one short of ``_SKIPLIST_FROM`` that gets 5 more members in a
call stays a listpack (tests/notify/test_batch_scripts.py)."""
_THROTTLE_MANY = """
local groups = cjson.decode(ARGV[1])
local prefix = ARGV[2]
local window = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local call = redis.call
local out = {}
local trimmed_at = {}
local size = {}
local touched = {}
local cut_at = {}  -- now -> the window's cut-off, as redis.call would format the number (once a batch)
local checked = {}  -- key -> true once its encoding was checked (and converted) in this call
local function to_skiplist(k)
  checked[k] = true
  if call('OBJECT', 'ENCODING', k) ~= 'skiplist' then
    local long = string.rep('~', 256)
    call('ZADD', k, 0, long)
    call('ZREM', k, long)
  end
end
-- trim the window of key k at the cut-off of now (once per key and instant); its size after
local function trim(k, now)
  local cut = cut_at[now]
  if cut == nil then
    cut = string.format('%.17g', tonumber(now) - window)
    cut_at[now] = cut
  end
  local removed = call('ZREMRANGEBYSCORE', k, '-inf', cut)
  if trimmed_at[k] == nil then
    touched[#touched + 1] = k
    size[k] = call('ZCARD', k)
    if size[k] >= __SKIPLIST_FROM__ then
      to_skiplist(k)
    end
  else
    size[k] = size[k] - removed
  end
  trimmed_at[k] = now
end
-- one item: add the member, then whether its rank is below the limit (the one-key script)
local function one(k, now, member, pos)
  local n = size[k] + call('ZADD', k, 'NX', now, member)
  size[k] = n
  if n == __SKIPLIST_GROWN__ and not checked[k] then
    to_skiplist(k)
  end
  if n > limit and call('ZRANK', k, member) >= limit then
    out[#out + 1] = pos
  end
end
local one_instant = #groups == 2
local now, items = groups[1], groups[2]
if one_instant then
  -- every item at one instant (the usual call): per window, in the order windows first appear, its
  -- members in item order. A window that stays within the limit with all of them allows each
  -- whatever its rank (a rank is below the window's size): one ZADD NX for the lot, which adds them
  -- as one ZADD NX each would. The other windows' items then go one by one, in order.
  local keys, args = {}, {}
  for i = 1, #items, 3 do
    local k = prefix .. items[i] .. ':' .. items[i + 1]
    local a = args[k]
    if a == nil then
      args[k] = {now, items[i + 2]}
      keys[#keys + 1] = k
    else
      local n = #a
      a[n + 1] = now
      a[n + 2] = items[i + 2]
    end
  end
  local slow = nil
  for _, k in ipairs(keys) do
    trim(k, now)
    local a = args[k]
    local m = #a / 2
    if size[k] + m <= limit then
      -- growing to _SKIPLIST_GROWN: converted first (the long member goes after the members, so a
      -- window new here is not left empty, i.e. deleted, in between)
      local long = nil
      if not checked[k] and size[k] + m >= __SKIPLIST_GROWN__ then
        checked[k] = true
        if size[k] == 0 or call('OBJECT', 'ENCODING', k) ~= 'skiplist' then
          long = string.rep('~', 256)
          call('ZADD', k, 0, long)
        end
      end
      for x = 1, #a, 400 do  -- (in slices: unpack has a stack limit)
        size[k] = size[k] + call('ZADD', k, 'NX', unpack(a, x, math.min(x + 399, #a)))
      end
      if long then
        call('ZREM', k, long)
      end
    else
      if slow == nil then slow = {} end
      slow[k] = true
    end
  end
  if slow then
    local pos = 0
    for i = 1, #items, 3 do
      pos = pos + 1
      local k = prefix .. items[i] .. ':' .. items[i + 1]
      if slow[k] then
        one(k, now, items[i + 2], pos)
      end
    end
  end
else
  local pos = 0
  for g = 1, #groups, 2 do
    local t, its = groups[g], groups[g + 1]
    for i = 1, #its, 3 do
      pos = pos + 1
      local k = prefix .. its[i] .. ':' .. its[i + 1]
      if trimmed_at[k] ~= t then
        trim(k, t)
      end
      one(k, t, its[i + 2], pos)
    end
  end
end
for _, k in ipairs(touched) do
  call('EXPIRE', k, ARGV[3])
end
return out
""".replace("__SKIPLIST_FROM__", str(_SKIPLIST_FROM)).replace("__SKIPLIST_GROWN__", str(_SKIPLIST_GROWN))


class Throttle:
    """Sliding window per (subscription, channel): the first ``throttle_max`` alerts in
    ``throttle_window_s`` pass. Idempotent per alert revision: handling the same alert twice
    keeps its original place in the window."""

    def __init__(self, redis: Redis, settings: NotifySettings) -> None:
        self.settings = settings
        self._script = redis.register_script(_THROTTLE)
        self._many = redis.register_script(_THROTTLE_MANY)
        self._coalesced: Coalescer[tuple[str, list[str]], list[bool]] = Coalescer(self._run_many)

    async def allow(self, subscription_id: str, channel_url: str, member: str, now_ts: float) -> bool:
        k = key("notify", "throttle", subscription_id, channel_hash(channel_url))
        rank = await self._script(keys=[k], args=[now_ts, member, self.settings.throttle_window_s])
        return int(rank) < self.settings.throttle_max

    async def allow_many(self, checks: Sequence[tuple[str, str, str]], now_ts: float) -> list[bool]:
        """:meth:`allow` for several (subscription_id, channel_url, member), applied in order (the
        same effect as one call each), in one script call shared with other alerts' checks of the
        same event-loop turn."""
        if not checks:
            return []
        ch = channel_hash
        flat: list[str] = []  # subscription id, channel hash, member, ... (the call's instant once)
        for sid, url, m in checks:
            flat += (sid, ch(url), m)
        now = repr(now_ts)  # as redis-py sends a float argument
        return (await self._coalesced.submit([(now, flat)]))[0]

    async def _run_many(self, calls: list[tuple[str, list[str]]]) -> list[list[bool]]:
        """(now, [subscription id, channel hash, member, ...]) per :meth:`allow_many` call: whether
        each member's rank in its window is below ``throttle_max``."""
        groups: list[Any] = []
        for now, flat in calls:
            groups += (now, flat)
        denied = await self._many(
            args=[
                _json_array(groups), key("notify", "throttle", ""), self.settings.throttle_window_s,
                self.settings.throttle_max,
            ]
        )  # fmt: skip
        n = sum(len(flat) for _, flat in calls) // 3
        allowed = [True] * n
        for position in denied:
            allowed[position - 1] = False
        if len(calls) == 1:
            return [allowed]
        out: list[list[bool]] = []
        i = 0
        for _, flat in calls:
            j = i + len(flat) // 3
            out.append(allowed[i:j])
            i = j
        return out


class DigestStore:
    """Alerts folded away by the throttle, per (subscription, channel), flushed as one message."""

    DUE = key("notify", "digest_due")

    def __init__(self, redis: Redis, settings: NotifySettings) -> None:
        self.redis = redis
        self.settings = settings

    @staticmethod
    def items_key(subscription_id: str, chash: str) -> str:
        return key("notify", "digest", subscription_id, chash)

    async def add(
        self, subscription_id: str, channel_url: str, item_id: str, item: dict[str, Any], now_ts: float
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self.queue_add(pipe, subscription_id, channel_url, item_id, item, now_ts)
            await pipe.execute()

    def queue_add(
        self, pipe: Any, subscription_id: str, channel_url: str, item_id: str, item: dict[str, Any], now_ts: float
    ) -> None:
        """:meth:`add`'s commands, on a (transactional) pipeline the caller executes."""
        chash = channel_hash(channel_url)
        k = self.items_key(subscription_id, chash)
        pipe.hset(k, item_id, json.dumps(item))
        pipe.expire(k, self.settings.deferred_ttl_s)
        pipe.zadd(self.DUE, {f"{subscription_id}|{chash}": now_ts + self.settings.digest_delay_s}, nx=True)

    async def due(self, now_ts: float) -> list[tuple[str, str]]:
        # cast: without withscores the reply holds the members only, no (member, score) pairs
        raw = cast("list[bytes | str]", await self.redis.zrangebyscore(self.DUE, "-inf", now_ts))
        out = []
        for m in raw:
            sub_id, _, chash = (m.decode() if isinstance(m, bytes) else m).partition("|")
            out.append((sub_id, chash))
        return out

    async def items(self, subscription_id: str, chash: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.items_key(subscription_id, chash))
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in sorted(raw.items())}

    async def done(self, subscription_id: str, chash: str, item_ids: Sequence[str], now_ts: float) -> None:
        k = self.items_key(subscription_id, chash)
        if item_ids:
            await self.redis.hdel(k, *item_ids)
        member = f"{subscription_id}|{chash}"
        if await self.redis.hlen(k):
            await self.redis.zadd(self.DUE, {member: now_ts + self.settings.digest_delay_s}, xx=True)
        else:
            await self.redis.zrem(self.DUE, member)


class DeferredQueue:
    """Deliveries held back by quiet hours: a hash of job documents and a due-time sorted set."""

    DOCS = key("notify", "deferred")
    DUE = key("notify", "deferred_due")

    def __init__(self, redis: Redis, settings: NotifySettings) -> None:
        self.redis = redis
        self.settings = settings

    async def add(self, idem_key: str, doc: dict[str, Any], due_ts: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self.queue_add(pipe, idem_key, doc, due_ts)
            await pipe.execute()

    def queue_add(self, pipe: Any, idem_key: str, doc: dict[str, Any], due_ts: float) -> None:
        """:meth:`add`'s commands, on a (transactional) pipeline the caller executes."""
        pipe.hset(self.DOCS, idem_key, json.dumps(doc))
        pipe.zadd(self.DUE, {idem_key: due_ts}, nx=True)

    async def due(self, now_ts: float) -> list[tuple[str, dict[str, Any]]]:
        # cast: without withscores the reply holds the members only, no (member, score) pairs
        ids = cast("list[bytes | str]", await self.redis.zrangebyscore(self.DUE, "-inf", now_ts))
        out = []
        for raw_id in ids:
            idem = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            doc = await self.redis.hget(self.DOCS, idem)
            if doc is None:
                await self.redis.zrem(self.DUE, idem)
                continue
            out.append((idem, json.loads(doc)))
        return out

    async def done(self, idem_key: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.DUE, idem_key)
            pipe.hdel(self.DOCS, idem_key)
            await pipe.execute()

    async def pending(self) -> int:
        return int(await self.redis.zcard(self.DUE))


# ----------------------------------------------------------------------------- the deliverer


_SENT_HERE = "sent_here"
"""(:meth:`Deliverer._await_other`: the key is held in this process's name by a delivery it sent
whose mark failed, :attr:`Deliverer._sent_here`.)"""

_SENT_HERE_MAX = 100_000
"""At most this many outcomes of deliveries sent before Redis failed are kept for their entries'
return (:attr:`Deliverer._sent_here`); beyond, the oldest whose marks are written are dropped (their
entries went to another replica, which finds them sent). Unwritten marks are never dropped."""


class Deliverer:
    """Runs delivery jobs concurrently with idempotency, timeouts, retries and dead letters."""

    def __init__(
        self,
        redis: Redis,
        registry: ChannelRegistry,
        settings: NotifySettings,
        *,
        recipients: RecipientLog | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        owner: str | None = None,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.settings = settings
        self.ledger = IdempotencyLedger(redis, settings, owner)
        self.recipients = recipients or RecipientLog(redis, settings)
        self._sleep = sleep
        self._rng = rng
        self._channels: dict[str, Channel] = {}
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._marks = PipelineBatcher(redis)
        self._mark_many = redis.register_script(_MARK_MANY)
        self._sending: set[str] = set()
        """Idempotency keys this process is sending right now. A key that Redis says *this* owner
        holds but that is not in here was left by an attempt of ours that failed between claim and
        send (Redis error, cancelled batch): it is taken again at once instead of waited out."""
        self._sent_here: dict[str, tuple[datetime, int]] = {}
        """Deliveries this process made whose outcome its caller never got, because writing their
        "sent" marks failed (Redis unreachable or killed after the channel accepted the message):
        idempotency key -> (when the mark was due, the attempt that succeeded). Such a key is never
        sent again by this process: when its entry comes back, its delivered outcome is returned
        (the event is published then) instead (:meth:`_known_outcome`)."""
        self._unmarked: dict[str, DeliveryJob] = {}
        """Those of :attr:`_sent_here` whose "sent" mark (and recipient records) is not in Redis yet:
        written by :meth:`write_unmarked` before any claim or send of the next batch or delivery
        (and by the service's housekeeping loop), so neither this process nor another replica that
        gets the entries sends them again."""

    def _own_orphan(self, idem_key: str, state: str) -> bool:
        """Whether ``state`` is a claim in this process's name left by an attempt of its own that
        failed before sending (not one in progress now, and not one that was sent)."""
        return state == self.ledger.token and idem_key not in self._sending and idem_key not in self._sent_here

    def _remember_sent(self, jobs: Sequence[DeliveryJob], attempt: int) -> None:
        """``jobs`` were accepted by their channel, and writing their marks failed: kept in the
        process (:attr:`_sent_here`, :attr:`_unmarked`) until Redis takes the marks."""
        at = utcnow()
        for job in jobs:
            k = job.idempotency_key
            self._sent_here[k] = (at, attempt)
            self._unmarked[k] = job
        log.warning(
            "%d delivery(ies) sent but not recorded (Redis failed); kept in this process, recorded when "
            "Redis answers again and never sent again",
            len(jobs),
        )
        extra = len(self._sent_here) - _SENT_HERE_MAX
        if extra > 0:  # outcomes of entries another replica took meanwhile: the oldest recorded ones go
            for k in [k for k in self._sent_here if k not in self._unmarked][:extra]:
                del self._sent_here[k]

    async def write_unmarked(self) -> int:
        """Write the "sent" marks (and recipient records) kept by :meth:`_remember_sent`, in one
        script call; returns how many were written (0 when none were kept). Raises what Redis
        raises (the marks stay kept)."""
        if not self._unmarked:
            return 0
        kept = dict(self._unmarked)
        await self._mark_sent_many(list(kept.values()))
        for k in kept:
            self._unmarked.pop(k, None)
        log.info("recorded %d delivery(ies) sent before Redis failed", len(kept))
        return len(kept)

    def _known_outcome(self, job: DeliveryJob, sent: tuple[datetime, int]) -> DeliveryOutcome:
        """The delivered outcome of ``job``, which this process sent before (:attr:`_sent_here`)."""
        at, attempt = sent
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s -> %s: sent before Redis failed; not sent again", job.subscription_id, mask_url(job.channel_url)
            )
        return self._delivered_many([job], at, [new_event_id()], attempt=attempt)[0]

    async def _write_kept(self, jobs: Sequence[DeliveryJob]) -> None:
        """:meth:`write_unmarked` before a call's claims. When that fails, the call fails only if
        one of its ``jobs`` is among the marks not written (its outcome cannot be handed out before
        its mark is in Redis, and it must not be sent again); the other calls go on (their own
        claims meet the same Redis), so a mark that cannot be written (a bug, not an outage) holds
        up the entries of its own alerts only."""
        try:
            await self.write_unmarked()
        except Exception as exc:
            unmarked = self._unmarked
            if any(j.idempotency_key in unmarked for j in jobs):
                raise
            log.warning("could not record %d delivery(ies) sent before Redis failed: %s", len(unmarked), exc)

    async def _take_known(self, job: DeliveryJob) -> DeliveryOutcome | None:
        """The kept marks written (:meth:`_write_kept`), then ``job``'s delivered outcome if this
        process sent it before (:attr:`_sent_here`), else None."""
        await self._write_kept([job])
        sent = self._sent_here.pop(job.idempotency_key, None)
        return None if sent is None else self._known_outcome(job, sent)

    async def _run_batch_known(self, jobs: Sequence[DeliveryJob]) -> list[DeliveryOutcome]:
        """:meth:`run_batch` while this process keeps deliveries it sent whose outcome was never
        returned: their marks are written first (:meth:`_write_kept`: a call with one of them fails
        while Redis does, before any claim or send), their jobs get their delivered outcome back
        without a send, the others run as usual."""
        await self._write_kept(jobs)
        outcomes: list[DeliveryOutcome | None] = [None] * len(jobs)
        rest: list[int] = []
        sent_here = self._sent_here
        for i, job in enumerate(jobs):
            sent = sent_here.pop(job.idempotency_key, None)
            if sent is None:
                rest.append(i)
            else:
                outcomes[i] = self._known_outcome(job, sent)
        if rest:
            done = await self._run_batch([jobs[i] for i in rest])
            for i, outcome in zip(rest, done, strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def backoff(self, attempt: int) -> float:
        s = self.settings
        growth: int = 2 ** (attempt - 1)  # attempt >= 1, so an int (typeshed types int ** int as Any)
        return min(s.backoff_max_s, s.backoff_base_s * growth) * (0.5 + self._rng() / 2)

    def channel(self, url: str) -> Channel:
        ch = self._channels.get(url)
        if ch is None:
            ch = self.registry.create(url, timeout_s=self.settings.send_timeout_s)
            self._channels[url] = ch
        return ch

    async def aclose(self) -> None:
        if self._unmarked:  # a last chance for the marks of sends made before Redis failed
            try:
                await self.write_unmarked()
            except Exception as exc:
                log.warning("%d sent delivery(ies) left unrecorded at close: %s", len(self._unmarked), exc)
        for ch in self._channels.values():
            try:
                await ch.aclose()
            except Exception:  # closing is best effort
                log.debug("closing a channel failed", exc_info=True)
        self._channels.clear()

    async def run(self, jobs: Sequence[DeliveryJob]) -> list[DeliveryOutcome]:
        if not jobs:
            return []
        return list(await asyncio.gather(*(self._guarded(job) for job in jobs)))

    async def run_batch(self, jobs: Sequence[DeliveryJob]) -> list[DeliveryOutcome]:
        """:meth:`run` for many jobs with the per-job overhead taken out; the same guarantees.

        One claim script for every key (in job order). Claimed jobs whose channel completes
        without awaiting (JSONL: one ``write(2)``) are sent inline, one after the other (one
        ``send_many`` call per channel object when it has one), and the
        ones the channel accepted are marked "sent" (with their recipient records) in one script call
        before their events are built; every other claimed job runs :meth:`deliver`'s retry loop in
        its own task (timeouts, back-off; bounded by ``max_concurrency``), started before the inline
        sends so a slow channel never waits for them nor they for it. Keys another owner holds
        ("sending:…", including a duplicate of a job earlier in this batch) go through
        :meth:`deliver`'s wait-and-claim afterwards, once this batch's own sends are marked.
        Returns one outcome per job, in order.

        When the marks of sends fail (Redis lost after the channel accepted the messages), the
        process keeps them (:meth:`_remember_sent`) and the call raises; the next call writes them
        first and gives those jobs their delivered outcome without sending again
        (:meth:`_run_batch_known`)."""
        if self._sent_here:
            return await self._run_batch_known(jobs)
        return await self._run_batch(jobs)

    async def _run_batch(self, jobs: Sequence[DeliveryJob]) -> list[DeliveryOutcome]:
        """:meth:`run_batch` of jobs none of which this process is known to have sent."""
        if not jobs:
            return []
        states = await self.ledger.claim_many([j.idempotency_key for j in jobs])
        outcomes: list[DeliveryOutcome | None] = [None] * len(jobs)
        # the claimed jobs of each channel object that completes without awaiting, sent inline
        by_channel: dict[str, tuple[Channel, list[int]]] = {}
        spawned: list[int] = []
        waiting: list[int] = []
        mine: list[str] = []  # keys this call claimed, in self._sending until its sends are resolved
        token, sending, channels = self.ledger.token, self._sending, self._channels
        for i, (job, state) in enumerate(zip(jobs, states, strict=True)):
            if state == token and self._own_orphan(job.idempotency_key, state):
                # ours before the await: another batch of this process meeting the key meanwhile
                # waits for this one instead of taking the orphan too
                sending.add(job.idempotency_key)
                try:
                    held = await self.ledger.extend(job.idempotency_key)
                except BaseException:
                    sending.difference_update(mine)
                    sending.discard(job.idempotency_key)
                    raise
                if not held:  # a stale state: another call of this process sent (and marked) it meanwhile
                    sending.discard(job.idempotency_key)
                    waiting.append(i)  # looked at again by deliver() after this call's sends
                    continue
                state = "claimed"
            if state == "claimed":
                sending.add(job.idempotency_key)
                mine.append(job.idempotency_key)
                url = job.channel_url
                group = by_channel.get(url)
                if group is not None:  # the channel object of this URL sends inline
                    group[1].append(i)
                    continue
                channel = channels.get(url)
                if channel is None:
                    try:
                        channel = self.channel(url)
                    except Exception:  # an invalid channel: deliver() reports it
                        spawned.append(i)
                        continue
                if getattr(channel, "completes_without_awaiting", False):
                    by_channel[url] = (channel, [i])
                else:
                    spawned.append(i)
            elif state == SENT:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("skip %s -> %s: already sent", job.subscription_id, mask_url(job.channel_url))
                outcomes[i] = DeliveryOutcome(job, "skipped_sent")
            else:
                waiting.append(i)
        tasks: dict[int, asyncio.Future[DeliveryOutcome]] = {
            i: asyncio.ensure_future(self._guarded_claimed(jobs[i])) for i in spawned
        }
        unsent = {i for _, idx in by_channel.values() for i in idx}
        try:
            accepted: list[int] = []
            for channel, idx in by_channel.values():
                # never awaits anything: no task, no timeout; one call for the lot when it can
                send_many = getattr(channel, "send_many", None)
                if send_many is not None:
                    errors: list[Exception | None] = send_many([jobs[i].message for i in idx])
                else:
                    errors = []
                    for i in idx:
                        try:
                            await channel.send(jobs[i].message)
                        except Exception as exc:
                            errors.append(exc)
                        else:
                            errors.append(None)
                if len(errors) != len(idx):
                    raise ValueError(f"{type(channel).__name__}.send_many: {len(errors)} outcomes for {len(idx)}")
                if errors.count(None) == len(errors):  # the usual case: every line written
                    accepted.extend(idx)
                    unsent.difference_update(idx)
                    continue
                for i, error in zip(idx, errors, strict=True):
                    unsent.discard(i)
                    if error is None:
                        accepted.append(i)
                    else:
                        tasks[i] = asyncio.ensure_future(self._guarded_claimed(jobs[i], first_error=error))
            if accepted:
                accepted_jobs = [jobs[i] for i in accepted]
                try:
                    await self._mark_sent_many(accepted_jobs)
                except BaseException:  # sent, not recorded: never sent again by this process
                    self._remember_sent(accepted_jobs, 1)
                    raise
                done = self._delivered_many(
                    accepted_jobs, utcnow(), _event_ids(len(accepted)), debug=log.isEnabledFor(logging.DEBUG)
                )
                for i, outcome in zip(accepted, done, strict=True):
                    outcomes[i] = outcome
            if tasks:
                done = await asyncio.gather(*tasks.values())
                for i, outcome in zip(tasks, done, strict=True):
                    outcomes[i] = outcome
        except BaseException:
            for t in tasks.values():
                t.cancel()
            for i in unsent:  # claimed, never handed to the channel: give the keys back
                with contextlib.suppress(Exception):
                    await self._release(jobs[i])
            raise
        finally:
            self._sending.difference_update(mine)
        if waiting:
            waited = await asyncio.gather(*(self._guarded(jobs[i]) for i in waiting))
            for i, outcome in zip(waiting, waited, strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    async def _guarded(self, job: DeliveryJob) -> DeliveryOutcome:
        async with self._semaphore:
            return await self.deliver(job)

    async def _guarded_claimed(self, job: DeliveryJob, first_error: Exception | None = None) -> DeliveryOutcome:
        async with self._semaphore:
            return await self._deliver_claimed(job, first_error)

    async def _await_other(self, job: DeliveryJob) -> str:
        """Claim the key, waiting out another replica's in-flight send; returns the final state.
        An own orphan taken back is in :attr:`_sending` already when "claimed" comes back."""
        state = await self.ledger.claim_batched(job.idempotency_key)
        waited = 0.0
        while state.startswith("sending:"):
            if state == self.ledger.token and job.idempotency_key in self._sent_here:
                return _SENT_HERE  # a call of this process sent it, then its mark failed
            if self._own_orphan(job.idempotency_key, state):
                self._sending.add(job.idempotency_key)  # before the await (see run_batch)
                try:
                    held = await self.ledger.extend(job.idempotency_key)
                except BaseException:
                    self._sending.discard(job.idempotency_key)
                    raise
                if held:
                    return "claimed"
                # a stale state: another call of this process finished with the key meanwhile
                self._sending.discard(job.idempotency_key)
                state = await self.ledger.claim(job.idempotency_key)
                continue
            if waited >= self.settings.in_flight_wait_s:
                break
            await asyncio.sleep(self.settings.in_flight_poll_s)
            waited += self.settings.in_flight_poll_s
            state = await self.ledger.claim(job.idempotency_key)
        return state

    async def deliver(self, job: DeliveryJob) -> DeliveryOutcome:
        if self._sent_here:  # sends whose marks failed: written first; a job among them is not sent again
            known = await self._take_known(job)
            if known is not None:
                return known
        state = await self._await_other(job)
        if state == _SENT_HERE:
            return await self._take_known(job) or DeliveryOutcome(job, "skipped_sent")
        if state == SENT:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("skip %s -> %s: already sent", job.subscription_id, mask_url(job.channel_url))
            return DeliveryOutcome(job, "skipped_sent")
        if state != "claimed":
            log.warning("skip %s -> %s: still in flight elsewhere", job.subscription_id, mask_url(job.channel_url))
            return DeliveryOutcome(job, "skipped_in_flight")
        self._sending.add(job.idempotency_key)
        try:
            return await self._deliver_claimed(job)
        finally:
            self._sending.discard(job.idempotency_key)

    def _common(self, job: DeliveryJob) -> dict[str, Any]:
        return {
            "correlation_id": job.correlation_id,
            "producer": self.settings.producer,
            "alert_id": job.alert_id,
            "revision": job.revision,
            "subscription_id": job.subscription_id,
            "channel": mask_url(job.channel_url),
            "kind": job.kind,
            "idempotency_key": job.idempotency_key,
        }

    def _delivered(self, job: DeliveryJob, attempt: int) -> DeliveryOutcome:
        """The outcome of a job delivered at its ``attempt`` now (see :meth:`_delivered_many`)."""
        return self._delivered_many([job], utcnow(), [new_event_id()], attempt=attempt)[0]

    def _delivered_many(
        self,
        jobs: Sequence[DeliveryJob],
        at: datetime,
        event_ids: Sequence[str],
        *,
        attempt: int = 1,
        debug: bool = True,
    ) -> list[DeliveryOutcome]:
        """The outcomes of delivered jobs, each with its event and the event's stream entry data
        (:func:`delivered_data`): ``at`` is every event's ``occurred_at`` (one timestamp for the
        deliveries of a batch marked sent together), ``event_ids`` one per job (:func:`_event_ids`);
        ``debug=False``: the caller knows DEBUG is off (a batch asks once, not per delivery). What
        every event shares (the timestamp's JSON, the producer, the envelope headers per correlation
        id) is made once for the lot (:func:`~vigil_notify.delivered.delivered_outcomes`, compiled by
        ``make native``)."""
        at_fragment = _Fragment(occurred_at_json(at))
        producer = self.settings.producer
        return delivered_outcomes(jobs, at, at_fragment, event_ids, producer, attempt, debug)

    async def _deliver_claimed(self, job: DeliveryJob, first_error: Exception | None = None) -> DeliveryOutcome:
        """Send a job whose key this process has claimed: attempts, back-off, final failure.
        ``first_error``: the first attempt was already made (inline) and failed with it."""
        common = self._common(job)
        masked = common["channel"]
        outcome = DeliveryOutcome(job, "failed")
        try:
            channel = self.channel(job.channel_url)
        except Exception as exc:
            reason = f"invalid channel: {exc}" if isinstance(exc, ValueError) else type(exc).__name__
            await self._release(job)
            return self._final_failure(outcome, common, 1, reason)
        max_attempts = self.settings.max_attempts
        for attempt in range(1, max_attempts + 1):
            try:
                if attempt == 1 and first_error is not None:
                    raise first_error
                if getattr(channel, "completes_without_awaiting", False):
                    # the send never yields (e.g. one local write(2)): a timeout could not interrupt
                    # it, so skip the task wait_for would create
                    await channel.send(job.message)
                else:
                    await asyncio.wait_for(channel.send(job.message), self.settings.send_timeout_s)
            except PermanentFailure as exc:
                await self._release(job)
                return self._final_failure(outcome, common, attempt, exc.reason)
            except (TemporaryFailure, TimeoutError, Exception) as exc:
                if isinstance(exc, TemporaryFailure):
                    reason = exc.reason
                elif isinstance(exc, TimeoutError):
                    reason = f"timed out after {self.settings.send_timeout_s:g}s"
                else:
                    reason = f"unexpected {type(exc).__name__}"
                    log.warning("channel %s raised %s", masked, type(exc).__name__)
                if attempt == max_attempts:
                    reason = f"{reason} (gave up after {attempt} attempts)"
                    await self._release(job)
                    return self._final_failure(outcome, common, attempt, reason)
                outcome.events.append(NotificationFailed(**common, attempt=attempt, error=reason, permanent=False))
                log.info("attempt %d to %s failed (%s); retrying", attempt, masked, reason)
                await self.ledger.extend(job.idempotency_key)
                await self._sleep(self.backoff(attempt))
            else:
                # one round trip, shared with the deliveries finishing in the same loop turn:
                # the "sent" mark and the recipient record
                try:
                    await self._marks.run(lambda pipe: self._queue_sent(pipe, job))
                except BaseException:  # sent, not recorded: never sent again by this process
                    self._remember_sent([job], attempt)
                    raise
                done = self._delivered(job, attempt)
                outcome.status = done.status
                outcome.events.extend(done.events)
                outcome.data = done.data  # of events[-1], the delivered event
                return outcome
        raise AssertionError("unreachable")  # pragma: no cover

    def _queue_sent(self, pipe: Any, job: DeliveryJob) -> None:
        pipe.set(self.ledger.redis_key(job.idempotency_key), SENT, ex=self.settings.sent_ttl_s)
        if job.record_under:
            self.recipients.queue_record(pipe, job.record_under, job.subscription_id, job.channel_url, job.reason)

    async def _mark_sent_many(self, jobs: Sequence[DeliveryJob]) -> None:
        """:meth:`_queue_sent` of several jobs in one script call: each key set "sent", and the
        recipient records of one original alert key with one ``EXPIRE``."""
        s = self.settings
        if not jobs:
            return
        packed, idem_keys = sent_records(jobs, channel_hash)  # (compiled by ``make native``)
        head: list[str | int] = [
            SENT, s.sent_ttl_s, s.recipients_ttl_s, len(jobs), *_keys(self.ledger.redis_key(""), idem_keys),
            self.recipients.redis_key(""),
        ]  # fmt: skip
        if await self._mark_many(args=[*head, *_records(packed)]) == -1:  # a string holds a NUL
            await self._mark_many(args=[*head, *_json_records(packed)])

    async def _release(self, job: DeliveryJob) -> None:
        await self.ledger.release(job.idempotency_key)

    def _final_failure(
        self, outcome: DeliveryOutcome, common: dict[str, Any], attempt: int, reason: str
    ) -> DeliveryOutcome:
        job = outcome.job
        outcome.events.append(NotificationFailed(**common, attempt=attempt, error=reason, permanent=True))
        fields = {
            "alert_id": job.alert_id,
            "revision": str(job.revision),
            "subscription_id": job.subscription_id,
            "channel": common["channel"],
            "kind": job.kind,
            "idempotency_key": job.idempotency_key,
            **(job.dead_letter_fields or {}),
            **(job.dead_letter_source() if job.dead_letter_source is not None else {}),
        }
        outcome.dead_letter = DeadLetter(
            correlation_id=job.correlation_id,
            producer=self.settings.producer,
            stream=ALERTS_CLASSIFIED,
            group=GROUP_NOTIFY,
            service="notify",
            entry_id=job.entry_id,
            fields=fields,
            error=reason,
            attempts=attempt,
        )
        log.warning("giving up on %s -> %s: %s", job.subscription_id, common["channel"], reason)
        return outcome
