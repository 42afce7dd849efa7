"""Lag-aware stream retention: trim by length and age, never below what a consumer group still needs.

Every Vigil stream is trimmed to the stricter of two retention rules (``VIGIL_RETENTION_MAX_LEN``
entries, ``VIGIL_RETENTION_MAX_AGE_S`` seconds), **but never past** the oldest entry some consumer
group still needs: for each group, its oldest pending entry (read, not yet acknowledged: a crashed
replica's work waiting to be claimed) and the first entry it has not read yet (just after its
``last-delivered-id``). The group check and the ``XTRIM ... MINID`` run in one server-side script, so
a group cannot read past the computed floor in between.

Consequence: a group that stops consuming (its service is down, or a group someone added and
forgot) holds the stream back; ``vigil status`` reports it, and the XADD safety cap
(``VIGIL_STREAM_MAXLEN``, far larger) bounds memory in the end - that cap, unlike this trimmer,
can drop entries a group has not read. See ``docs/guarantees.md``.

Every host runs :func:`retention_loop` (``VIGIL_RETENTION_INTERVAL_S``); trimming is idempotent, so
several replicas doing it is harmless.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vigil_shared import streams
from vigil_shared.settings import VigilSettings

log = structlog.get_logger("vigil.retention")

LENGTH_SCAN_LIMIT = 5_000
"""At most this many entries are read per pass to find the length cut; a stream far over its limit
is brought back over several passes."""

# KEYS[1] = stream; ARGV[1] = the retention's cut ("ms-seq": entries before it may go).
# Lowers the cut to the oldest entry any group still needs, trims, returns {trimmed, cut, holder}.
_TRIM_LUA = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local cut = ARGV[1]
local holder = ''
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
  -- entries after last-delivered-id are unread; keeping that one entry too costs nothing
  local need = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], info['name'])
    if summary[2] and less(summary[2], need) then need = summary[2] end
  end
  if less(need, cut) then
    cut = need
    holder = info['name']
  end
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', cut)
return {trimmed, cut, holder}
"""


@dataclass(frozen=True)
class TrimResult:
    stream: str
    trimmed: int
    cut: str | None
    """Entries before this id were removed (None: no retention rule applied)."""
    held_back_by: str | None = None
    """The consumer group that kept the cut lower than the retention asked for."""


def _id(ms: int, seq: int = 0) -> str:
    return f"{max(ms, 0)}-{seq}"


def _parse(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def retention_cut(
    redis: Redis, stream: str, *, max_len: int, max_age_s: float, now_ms: int | None = None
) -> str | None:
    """The id before which the retention rules alone would remove entries (the stricter rule wins)."""
    cuts: list[tuple[int, int]] = []
    if max_age_s > 0:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        cuts.append((now_ms - int(max_age_s * 1000), 0))
    if max_len > 0:
        excess = int(await redis.xlen(stream)) - max_len
        if excess > 0:
            rows = streams.entries(await redis.xrange(stream, "-", "+", count=min(excess + 1, LENGTH_SCAN_LIMIT)))
            if rows:
                cuts.append(_parse(rows[-1][0]))
    if not cuts:
        return None
    return _id(*max(cuts))


async def trim_stream(
    redis: Redis, stream: str, *, max_len: int, max_age_s: float, now_ms: int | None = None
) -> TrimResult:
    """Apply the retention to one stream, lag-aware (see the module docstring)."""
    if not await redis.exists(stream):
        return TrimResult(stream, 0, None)
    cut = await retention_cut(redis, stream, max_len=max_len, max_age_s=max_age_s, now_ms=now_ms)
    if cut is None:
        return TrimResult(stream, 0, None)
    script = redis.register_script(_TRIM_LUA)
    trimmed, final_cut, holder = await script(keys=[stream], args=[cut])
    final = final_cut.decode() if isinstance(final_cut, bytes) else str(final_cut)
    held = (holder.decode() if isinstance(holder, bytes) else str(holder)) or None
    return TrimResult(stream, int(trimmed), final, held)


async def trim_all(
    redis: Redis, settings: VigilSettings, names: Sequence[str] = streams.ALL_STREAMS
) -> list[TrimResult]:
    return [
        await trim_stream(
            redis, s, max_len=settings.retention_max_len, max_age_s=settings.retention_max_age_s
        )
        for s in names
    ]


async def retention_loop(
    redis: Redis, settings: VigilSettings, names: Sequence[str] = streams.ALL_STREAMS
) -> None:
    """Trim every ``retention_interval_s`` (with jitter) until cancelled; Redis errors are retried."""
    interval = settings.retention_interval_s
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        try:
            for r in await trim_all(redis, settings, names):
                if r.trimmed:
                    log.info(
                        "stream trimmed",
                        stream=r.stream,
                        trimmed=r.trimmed,
                        cut=r.cut,
                        held_back_by=r.held_back_by,
                    )
                elif r.held_back_by:
                    log.debug(
                        "retention held back by a consumer group",
                        stream=r.stream,
                        group=r.held_back_by,
                        cut=r.cut,
                    )
        except (RedisError, OSError) as exc:
            log.warning("retention pass failed; will retry", error=str(exc))
