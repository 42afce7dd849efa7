"""Deduplication and revision numbering in Redis, atomic across ingest replicas.

Per identity key a Redis hash ``vigil:dedup:<alert_id>`` holds the alert id, the last revision
number and one field per fingerprint seen (``fp:<fingerprint>`` -> revision). One Lua script reads
and updates it, so any number of replicas registering the same item at once agree: exactly one
sees it as new, the rest as duplicates. The key's TTL is refreshed on every sight, so an item that
stays in a feed never expires and comes back as new.

Every fingerprint ever seen for a key is remembered, not just the latest: an item that flips
between two bodies (e.g. reached through one feed with the full ``content:encoded`` and another
with the short description) yields one revision, not a revision per poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from vigil_shared.streams import key as redis_key

from vigil_ingest.drafts import AlertDraft
from vigil_ingest.identity import alert_id_for, fingerprint, identity_key, title_key, update_base_title

DEFAULT_TTL_S: Final = 30 * 24 * 3600
"""How long an alert's dedup state is kept after it was last seen (30 days)."""

_REGISTER_LUA: Final = """
local ttl = ARGV[1]
local n = tonumber(ARGV[2])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local deadline = string.format('%.0f', now_ms + tonumber(ttl) * 1000)
local res = {}
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local h = KEYS[i]
  local fp_field = ARGV[a + 1]
  local id = ARGV[a + 2]
  local seen = redis.call('HGET', h, fp_field)
  if seen then
    redis.call('PEXPIREAT', h, deadline)
    local cid = redis.call('HGET', h, 'cid:' .. seen) or ''
    res[i] = '0 ' .. seen .. ' ' .. id .. ' ' .. cid
  else
    local rev = redis.call('HINCRBY', h, 'revision', '1')
    local cid = ARGV[a + 3]
    local rs = '1'
    if rev == 1 then
      if cid ~= '' then
        redis.call('HSET', h, 'alert_id', id, fp_field, '1', 'cid:1', cid)
      else
        redis.call('HSET', h, 'alert_id', id, fp_field, '1')
      end
    else
      rs = string.format('%d', rev)
      if cid ~= '' then
        redis.call('HSET', h, fp_field, rs, 'cid:' .. rs, cid)
      else
        redis.call('HSET', h, fp_field, rs)
      end
    end
    redis.call('PEXPIREAT', h, deadline)
    res[i] = '1 ' .. rs .. ' ' .. id .. ' ' .. cid
  end
  local t = tonumber(ARGV[a + 4])
  if t > 0 then
    redis.call('SET', KEYS[t], ARGV[a + 5], 'EX', ttl)
  end
end
return table.concat(res, '\\n')
"""
"""Registers sightings in order, each exactly as one atomic registration would (the whole call is one
script, so atomic too). KEYS: the dedup hash of each sighting, then the title keys to remember.
ARGV: ttl, n, then per sighting: its fingerprint's field (``fp:<fingerprint>``), alert id,
correlation id (remembered as ``cid:<rev>`` for a new revision; '' for none), index in KEYS of its
title key (0: none), identity key (the title key's value). Returns one line per sighting,
``created revision alert_id correlation_id`` (the last empty if unknown): one bulk string is far
cheaper for the client to read than nested arrays.

Numbers are handed to ``redis.call`` and concatenated as strings (the TTL as given, a revision as
``'1'`` or formatted once): Redis formats a Lua number argument with ``snprintf("%.17g")`` and Lua
a concatenated one with ``sprintf("%.14g")``, ~3-4k instructions each (five per new alert before)."""

_UNREGISTER_MINE_LUA: Final = """
for i = #KEYS, 1, -1 do
  local h = KEYS[i]
  local fp_field = 'fp:' .. ARGV[2 * i - 1]
  local seen = redis.call('HGET', h, fp_field)
  if seen and redis.call('HGET', h, 'cid:' .. seen) == ARGV[2 * i] then
    local rev = tonumber(seen)
    redis.call('HDEL', h, fp_field, 'cid:' .. seen)
    local current = tonumber(redis.call('HGET', h, 'revision') or '0')
    if current == rev then
      if rev <= 1 then
        redis.call('DEL', h)
      else
        redis.call('HSET', h, 'revision', rev - 1)
      end
    end
  end
end
return 1
"""
"""Undoes, last first, the registrations a call made, recognised by the correlation id each one
remembered (so it works without the call's answer, e.g. when the connection broke after the
script ran): a sighting that was a duplicate, or registered by another caller, is left alone.
KEYS: dedup hashes; ARGV: fingerprint, correlation id per sighting."""


@dataclass(frozen=True)
class Registration:
    """What dedup decided for one sighting of an alert."""

    alert_id: str
    revision: int
    revision_of: str | None
    """For revision > 1: the alert_id of the first revision (the same stable id)."""
    is_new: bool
    """First sight of this alert (revision 1)."""
    is_duplicate: bool
    """This exact content was seen before: do not publish it again."""
    key: str = ""
    """The identity key the alert was registered under."""
    fingerprint: str = ""
    """The content fingerprint registered (used to undo a registration whose publish failed)."""
    correlation_id: str | None = None
    """For a duplicate: the correlation id its revision was remembered with (None if unknown); for a
    new revision: the one given to :func:`register_many`."""

    @property
    def should_publish(self) -> bool:
        return not self.is_duplicate


def dedup_key(alert_id: str) -> str:
    return redis_key("dedup", alert_id)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Sighting:
    """One sighting to register: identity key, content fingerprint, and what to remember with it."""

    key: str
    fingerprint: str
    correlation_id: str | None = None
    """Remembered for a new revision (answered to later duplicates)."""
    title_key: str | None = None
    """Key (without the ``vigil:dedup:`` prefix) under which to remember ``key`` for the item's title."""


async def register_many(
    redis: Any, sightings: Sequence[Sighting], *, ttl_s: int = DEFAULT_TTL_S
) -> list[Registration]:
    """Record sightings in order, in one atomic script (one round trip for any number of them).

    Each is decided exactly as :func:`register` decides one, seeing the ones before it (a duplicate
    within the call is a duplicate), and remembers its title key after it registered.
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if not sightings:
        return []
    ids = [alert_id_for(s.key) for s in sightings]
    keys: list[str] = [dedup_key(alert_id) for alert_id in ids]
    args: list[Any] = [int(ttl_s), len(sightings)]
    for s, alert_id in zip(sightings, ids, strict=True):
        title_index = 0
        if s.title_key is not None:
            keys.append(redis_key("dedup", s.title_key))
            title_index = len(keys)
        args += ("fp:" + s.fingerprint, alert_id, s.correlation_id or "", title_index, s.key)
    raw = await redis.register_script(_REGISTER_LUA)(keys=keys, args=args)  # EVALSHA, loaded on NOSCRIPT
    out: list[Registration] = []
    for s, line in zip(sightings, _str(raw).split("\n"), strict=True):
        flag, rev, stored_id, cid = line.split(" ", 3)
        created, revision = flag == "1", int(rev)
        out.append(
            Registration(
                alert_id=stored_id,
                revision=revision,
                revision_of=stored_id if revision > 1 else None,
                is_new=created and revision == 1,
                is_duplicate=not created,
                key=s.key,
                fingerprint=s.fingerprint,
                correlation_id=cid or None,
            )
        )
    return out


async def unregister_many(redis: Any, sightings: Sequence[Sighting]) -> None:
    """Undo whatever :func:`register_many` registered for ``sightings`` (those given a correlation
    id), whether or not its answer arrived; atomic, one round trip. See ``_UNREGISTER_MINE_LUA``."""
    mine = [s for s in sightings if s.correlation_id]
    if not mine:
        return
    args: list[str] = []
    for s in mine:
        args += (s.fingerprint, s.correlation_id or "")
    keys = [dedup_key(alert_id_for(s.key)) for s in mine]
    await redis.register_script(_UNREGISTER_MINE_LUA)(keys=keys, args=args)


async def register(redis: Any, key: str, fingerprint: str, *, ttl_s: int = DEFAULT_TTL_S) -> Registration:
    """Record one sighting of identity ``key`` with content ``fingerprint``; atomic.

    First sight -> revision 1, new. Same fingerprint as any earlier sighting -> duplicate (the
    revision it was first seen as). A new fingerprint -> revision n+1 with ``revision_of`` set.
    ``redis`` is a ``redis.asyncio.Redis`` (with or without ``decode_responses``).
    """
    return (await register_many(redis, [Sighting(key, fingerprint)], ttl_s=ttl_s))[0]


async def sightings_of(
    redis: Any, drafts: Sequence[AlertDraft], correlation_ids: Sequence[str | None] | None = None
) -> list[Sighting]:
    """The sighting of each draft: its identity key, with ``"Update: <title>"`` items linked.

    A non-CAP item titled ``"Update: X"`` whose issuer (or source) recently published an item
    titled ``"X"`` takes that item's key, so it registers as a revision of it — also when that item
    is earlier in ``drafts``. Every other item remembers its title so a later update can find it.
    The titles are looked up in one ``MGET`` (none when no title is an update).
    """
    keys: list[str] = []
    aliases: list[str | None] = []
    own: list[str | None] = []
    for draft in drafts:
        keys.append(identity_key(draft))
        base = update_base_title(draft.title) if draft.cap is None else None
        aliases.append(title_key(draft, base) if base is not None else None)
        own.append(title_key(draft) if base is None else None)
    lookups = sorted({a for a in aliases if a is not None})
    stored: dict[str, str] = {}
    if lookups:
        values = await redis.mget([redis_key("dedup", a) for a in lookups])
        stored = {a: _str(v) for a, v in zip(lookups, values, strict=True) if v is not None}
    out: list[Sighting] = []
    remembered: dict[str, str] = {}  # title keys set by earlier drafts of this call
    for i, draft in enumerate(drafts):
        key = keys[i]
        alias = aliases[i]
        if alias is not None:
            original = remembered.get(alias) or stored.get(alias)
            if original is not None:
                key = original
        if own[i] is not None:
            remembered[own[i]] = key  # type: ignore[index]
        cid = correlation_ids[i] if correlation_ids is not None else None
        out.append(Sighting(key, fingerprint(draft), cid, own[i]))
    return out


async def register_drafts(
    redis: Any,
    drafts: Sequence[AlertDraft],
    *,
    ttl_s: int = DEFAULT_TTL_S,
    correlation_ids: Sequence[str | None] | None = None,
) -> list[Registration]:
    """:func:`register_draft` of each draft, in order, in two round trips at most (titles, script)."""
    return await register_many(redis, await sightings_of(redis, drafts, correlation_ids), ttl_s=ttl_s)


async def register_draft(redis: Any, draft: AlertDraft, *, ttl_s: int = DEFAULT_TTL_S) -> Registration:
    """Register ``draft`` under its identity key, linking ``"Update: <title>"`` items.

    A non-CAP item titled ``"Update: X"`` whose issuer (or source) recently published an item
    titled ``"X"`` is registered as a revision of that item. Every other item remembers its title
    so a later update can find it.
    """
    return (await register_drafts(redis, [draft], ttl_s=ttl_s))[0]
