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
several replicas doing it is harmless, and a short lease (:data:`LEASE_KEY`) lets one of them pass
per interval. While the groups keep up, a pass reads no entries (the length
rule is applied by count inside the script, see ``_TRIM_LUA``); only a lagging group makes it read
the stream's head to find the length cut.
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
from vigil_shared.cancellation import raise_if_cancel_requested
from vigil_shared.settings import VigilSettings

log = structlog.get_logger("vigil.retention")

LENGTH_SCAN_LIMIT = 5_000
"""At most this many entries are read per pass to find the length cut when a lagging group makes
the pass read the stream's head; such a stream far over its limit is brought back over several
passes. While the groups keep up (or there are none) the length rule needs no read and a pass
trims all the way to the limit, however far over it the stream is."""

LAG_SCAN_LIMIT = 1_000
"""At most this many entries from the groups' floor on are looked at inside the trim script (see
``_TRIM_LUA``); past that, the length cut is found as before, by reading the stream's head."""

LEASE_KEY = streams.key("retention", "lease")
"""Taken (``SET NX PX``, 0.8 x the interval) by the process whose :func:`retention_loop` passes first
in an interval; the others skip theirs. Trimming is idempotent, so their passes only repeated the
same reads (the groups' state, the entries from the floor on). A holder that dies just lets the
lease expire. Processes configured with different retention rules take turns applying theirs."""

# KEYS[1] = stream; ARGV[1] = the age rule's cut ("ms-seq", '' = no age rule), ARGV[2] = max_len
# (0 = no length rule), ARGV[3] = LENGTH_SCAN_LIMIT, ARGV[4] = LAG_SCAN_LIMIT, ARGV[5] = the cut the
# caller computed ('' = let the script find it), ARGV[6] = '1' when the rules' cut is past ARGV[5].
# Returns {trimmed, cut ('' = no rule applied), holder ('' = none)}, or {-1, floor, ''}: the caller
# must compute the cut (ARGV[5]) and call again.
#
# The cut is the stricter rule's (the age cut, or the id of the first entry the length rule keeps),
# lowered to the oldest entry any group still needs (the floor: a group's oldest pending entry, or
# the entry it last read - the entries after it are unread). The length cut is an entry *position*,
# and no stream command returns the id at a position without returning every entry before it
# (~3 KB each, thousands per pass). It is not needed when the length cut is below the floor: then
# trimming by count (XTRIM MAXLEN) does exactly what trimming to the cut would. The script learns
# that from the entries from the floor on (few when the groups keep up: no group at all, or a lag
# of one read batch), and reads nothing from the head. When they are many (a group lags), it hands
# back to the caller, which reads the head as before (the length cut's id; only the entries before
# the floor: a group held back near the head leaves few) and passes the cut in.
_TRIM_LUA = """
local call = redis.call
local key, age, max_len = KEYS[1], ARGV[1], tonumber(ARGV[2])
local lag_limit, given, strict = tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'  -- (ARGV[3]: unused)
if call('EXISTS', key) == 0 then return {0, '', ''} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local length, excess = 0, 0
if given == '' and max_len > 0 then
  length = call('XLEN', key)
  -- the entries the length rule removes: all of them here, where no entry before the floor is read
  -- (the scan limit bounds the caller's head read only, when it has to find the cut)
  excess = length - max_len
end
if given == '' and age == '' and excess <= 0 then return {0, '', ''} end
-- the floor; the holder is the first group that has it
local floor, holder, floor_side = nil, '', nil
for _, g in ipairs(call('XINFO', 'GROUPS', key)) do
  local info = {}
  for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
  -- entries after last-delivered-id are unread; keeping that one entry too costs nothing
  local need = info['last-delivered-id']
  local pending = tonumber(info['pending'])
  if pending > 0 then
    local summary = call('XPENDING', key, info['name'])
    if summary[2] and less(summary[2], need) then need = summary[2] end
  end
  if floor == nil or less(need, floor) then
    floor, holder = need, info['name']
    -- at least this many entries from the floor on, when XINFO knows the group's lag
    floor_side = info['lag'] and (tonumber(info['lag']) + pending) or nil
  end
end
-- else guessed from the ids' times (a steady rate): only decides whether looking is worth it
local function guess_floor_side()
  local first = call('XRANGE', key, '-', '+', 'COUNT', 1)[1][1]
  local last = call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1][1]
  local f, l, m = parse(first), parse(last), parse(floor)
  if m <= f then return length end
  return math.floor(length * (l - m) / (l - f + 1))
end
local keep = length - excess  -- the entries the length rule keeps
local len_cut, below = nil, false  -- the length cut's id, or: it is below the floor
if excess > 0 then
  if floor == nil then
    below = true
  else
    local n = math.min(excess, lag_limit)
    if (floor_side or guess_floor_side()) <= n then
      local rows = call('XRANGE', key, floor, '+', 'COUNT', n + 1)
      if #rows <= n then  -- every entry from the floor on
        if #rows >= keep then len_cut = rows[#rows - keep + 1][1] else below = true end
      end
    end
    if len_cut == nil and not below then return {-1, floor, ''} end
  end
end
if below and (age == '' or floor == nil or less(age, floor)) then
  -- both rules cut below the floor: by age, then by count; the cut is the later of the two
  local trimmed = 0
  if age ~= '' then trimmed = call('XTRIM', key, 'MINID', age) end
  local left = call('XLEN', key)
  if left > keep then trimmed = trimmed + call('XTRIM', key, 'MAXLEN', keep) end
  local cut = age
  if left >= keep then cut = call('XRANGE', key, '-', '+', 'COUNT', 1)[1][1] end
  return {trimmed, cut, ''}
end
local cut = given
if cut == '' then
  cut = age  -- (below: the age cut is at or past the floor, so it is the stricter rule)
  if len_cut and (age == '' or less(age, len_cut)) then cut = len_cut end
end
-- (strict: the given cut stands for a stricter one just past it, so a floor at it holds it back too)
if floor ~= nil and (less(floor, cut) or (strict and not less(cut, floor))) then
  cut = floor
else
  holder = ''
end
return {call('XTRIM', key, 'MINID', cut), cut, holder}
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


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _head_cut(redis: Redis, stream: str, floor: str, *, max_len: int, age_cut: str) -> tuple[str, bool] | None:
    """The cut for the trim script when a group lags: the retention's (the age cut or the length
    cut read from the stream's head, the later), or ``(floor, True)`` when the length cut is past
    the floor (the script trims to the floor then; which entry the cut is does not matter). Reads
    the entries before the floor only, at most ``LENGTH_SCAN_LIMIT``."""
    cuts = [_parse(age_cut)] if age_cut else []
    excess = int(await redis.xlen(stream)) - max_len if max_len > 0 else 0
    if excess > 0:
        count = min(excess + 1, LENGTH_SCAN_LIMIT)
        rows = [] if floor == "0-0" else streams.entries(await redis.xrange(stream, "-", f"({floor}", count=count))
        if len(rows) == count:  # the first ``count`` entries: the length cut is the last
            cuts.append(_parse(rows[-1][0]))
        else:
            first_kept = []  # the length cut, when it is the first entry from the floor on
            if len(rows) == count - 1:
                first_kept = streams.entries(await redis.xrange(stream, floor, "+", count=1))
            if not first_kept:
                return floor, True
            cuts.append(_parse(first_kept[0][0]))
    if not cuts:
        return None
    return _id(*max(cuts)), False


async def trim_stream(
    redis: Redis, stream: str, *, max_len: int, max_age_s: float, now_ms: int | None = None
) -> TrimResult:
    """Apply the retention to one stream, lag-aware (see the module docstring and ``_TRIM_LUA``)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    age_cut = _id(now_ms - int(max_age_s * 1000)) if max_age_s > 0 else ""
    if not age_cut and max_len <= 0:
        return TrimResult(stream, 0, None)
    script = redis.register_script(_TRIM_LUA)
    args: list[str | int] = [age_cut, max(max_len, 0), LENGTH_SCAN_LIMIT, LAG_SCAN_LIMIT, "", ""]
    trimmed, cut, holder = await script(keys=[stream], args=args)
    if int(trimmed) < 0:  # a group lags: the length cut is read from the head
        given = await _head_cut(redis, stream, _text(cut), max_len=max_len, age_cut=age_cut)
        if given is None:
            return TrimResult(stream, 0, None)
        args[4], args[5] = given[0], "1" if given[1] else ""
        trimmed, cut, holder = await script(keys=[stream], args=args)
    return TrimResult(stream, int(trimmed), _text(cut) or None, _text(holder) or None)


async def trim_all(
    redis: Redis, settings: VigilSettings, names: Sequence[str] = streams.ALL_STREAMS
) -> list[TrimResult]:
    return [
        await trim_stream(redis, s, max_len=settings.retention_max_len, max_age_s=settings.retention_max_age_s)
        for s in names
    ]


async def retention_loop(redis: Redis, settings: VigilSettings, names: Sequence[str] = streams.ALL_STREAMS) -> None:
    """Trim every ``retention_interval_s`` (with jitter) until cancelled; Redis errors are retried."""
    interval = settings.retention_interval_s
    if interval <= 0:
        return
    lease_ms = max(1, int(interval * 800))
    while True:
        # cancelled, but the CancelledError did not come out of the pass (the Redis client lost it, or
        # turned it into one of its errors, which the except below retries): the loop must still stop
        # (a test's or a shutdown's gather waits for it); see vigil_shared.cancellation
        raise_if_cancel_requested()
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        try:
            # one pass per interval among the processes sharing this Redis (see LEASE_KEY)
            if not await redis.set(LEASE_KEY, settings.consumer_name, nx=True, px=lease_ms):
                continue
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
