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

from dataclasses import dataclass
from typing import Any, Final

from vigil_shared.streams import key as redis_key

from vigil_ingest.drafts import AlertDraft
from vigil_ingest.identity import alert_id_for, fingerprint, identity_key, title_key, update_base_title

DEFAULT_TTL_S: Final = 30 * 24 * 3600
"""How long an alert's dedup state is kept after it was last seen (30 days)."""

_REGISTER_LUA: Final = """
local h = KEYS[1]
local fp_field = 'fp:' .. ARGV[1]
local ttl = tonumber(ARGV[3])
local seen = redis.call('HGET', h, fp_field)
if seen then
  redis.call('EXPIRE', h, ttl)
  return {0, tonumber(seen), redis.call('HGET', h, 'alert_id')}
end
local rev = redis.call('HINCRBY', h, 'revision', 1)
if rev == 1 then
  redis.call('HSET', h, 'alert_id', ARGV[2])
end
redis.call('HSET', h, fp_field, rev)
redis.call('EXPIRE', h, ttl)
return {1, rev, redis.call('HGET', h, 'alert_id')}
"""


_UNREGISTER_LUA: Final = """
local h = KEYS[1]
local fp_field = 'fp:' .. ARGV[1]
local rev = tonumber(ARGV[2])
local seen = redis.call('HGET', h, fp_field)
if (not seen) or tonumber(seen) ~= rev then
  return 0
end
redis.call('HDEL', h, fp_field)
local current = tonumber(redis.call('HGET', h, 'revision') or '0')
if current == rev then
  if rev <= 1 then
    redis.call('DEL', h)
  else
    redis.call('HSET', h, 'revision', rev - 1)
  end
end
return 1
"""


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

    @property
    def should_publish(self) -> bool:
        return not self.is_duplicate


def dedup_key(alert_id: str) -> str:
    return redis_key("dedup", alert_id)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def register(redis: Any, key: str, fingerprint: str, *, ttl_s: int = DEFAULT_TTL_S) -> Registration:
    """Record one sighting of identity ``key`` with content ``fingerprint``; atomic.

    First sight -> revision 1, new. Same fingerprint as any earlier sighting -> duplicate (the
    revision it was first seen as). A new fingerprint -> revision n+1 with ``revision_of`` set.
    ``redis`` is a ``redis.asyncio.Redis`` (with or without ``decode_responses``).
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    alert_id = alert_id_for(key)
    raw = await redis.eval(_REGISTER_LUA, 1, dedup_key(alert_id), fingerprint, alert_id, int(ttl_s))
    created, revision, stored_id = int(raw[0]), int(raw[1]), _str(raw[2])
    return Registration(
        alert_id=stored_id,
        revision=revision,
        revision_of=stored_id if revision > 1 else None,
        is_new=bool(created) and revision == 1,
        is_duplicate=not created,
        key=key,
        fingerprint=fingerprint,
    )


async def unregister(redis: Any, registration: Registration) -> bool:
    """Undo a fresh registration whose event could not be published; atomic, best effort.

    Forgets the registration's fingerprint (and gives back its revision number if no later
    revision was registered meanwhile), so the next sighting of the item is new again instead of
    a duplicate of an alert that never reached the stream. Returns whether anything was undone.
    """
    if registration.is_duplicate or not registration.fingerprint:
        return False
    undone = await redis.eval(
        _UNREGISTER_LUA, 1, dedup_key(registration.alert_id), registration.fingerprint, registration.revision
    )
    return bool(int(undone))


async def register_draft(redis: Any, draft: AlertDraft, *, ttl_s: int = DEFAULT_TTL_S) -> Registration:
    """Register ``draft`` under its identity key, linking ``"Update: <title>"`` items.

    A non-CAP item titled ``"Update: X"`` whose issuer (or source) recently published an item
    titled ``"X"`` is registered as a revision of that item. Every other item remembers its title
    so a later update can find it.
    """
    key = identity_key(draft)
    base = update_base_title(draft.title) if draft.cap is None else None
    if base is not None:
        alias = title_key(draft, base)
        original = await redis.get(redis_key("dedup", alias)) if alias else None
        if original is not None:
            key = _str(original)
    registration = await register(redis, key, fingerprint(draft), ttl_s=ttl_s)
    if base is None:
        own = title_key(draft)
        if own is not None:
            await redis.set(redis_key("dedup", own), key, ex=int(ttl_s))
    return registration
