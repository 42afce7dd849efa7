"""Lag-aware retention and consumer groups against a real Redis."""

from __future__ import annotations

import random
import time

import pytest
from redis.asyncio import Redis
from shutdown_support import cancel_and_expect_end
from vigil_shared.groups import GroupExists, add_group, list_groups, remove_group
from vigil_shared.retention import trim_stream

S = "test.retained"


async def fill(redis: Redis, n: int, start_ms: int = 1_000) -> list[bytes]:
    return [await redis.xadd(S, {"n": str(i)}, id=f"{start_ms + i}-0") for i in range(n)]


async def test_length_retention_without_groups(redis: Redis) -> None:
    ids = await fill(redis, 100)
    r = await trim_stream(redis, S, max_len=30, max_age_s=0)
    assert r.trimmed == 70
    assert await redis.xlen(S) == 30
    assert (await redis.xrange(S, count=1))[0][0] == ids[70]
    assert r.held_back_by is None


async def test_age_retention_without_groups(redis: Redis) -> None:
    now_ms = int(time.time() * 1000)
    await fill(redis, 10, start_ms=now_ms - 100_000)  # 100 s old
    await fill(redis, 5, start_ms=now_ms - 1_000)  # 1 s old
    r = await trim_stream(redis, S, max_len=0, max_age_s=50, now_ms=now_ms)
    assert r.trimmed == 10
    assert await redis.xlen(S) == 5


async def test_never_trims_what_a_lagging_group_has_not_read(redis: Redis) -> None:
    ids = await fill(redis, 100)
    await redis.xgroup_create(S, "fast", id="$")
    await redis.xgroup_create(S, "slow", id=ids[39])  # has read 40 entries, 60 unread
    r = await trim_stream(redis, S, max_len=10, max_age_s=0)
    assert r.held_back_by == "slow"
    # entries up to (and including, harmlessly) the last delivered one are kept from there on
    first = (await redis.xrange(S, count=1))[0][0]
    assert first == ids[39]
    got = await redis.xreadgroup("slow", "c", {S: ">"}, count=1000)
    assert len(got[0][1]) == 60


async def test_never_trims_pending_entries(redis: Redis) -> None:
    ids = await fill(redis, 50)
    await redis.xgroup_create(S, "g", id="0")
    await redis.xreadgroup("g", "dead-replica", {S: ">"}, count=50)  # read all, acked only some
    await redis.xack(S, "g", *ids[:20], *ids[30:])
    r = await trim_stream(redis, S, max_len=5, max_age_s=0)
    assert r.held_back_by == "g"
    assert r.trimmed == 20
    claimed = await redis.xautoclaim(S, "g", "survivor", min_idle_time=0, start_id="0-0", count=100)
    assert [eid for eid, _ in claimed[1]] == ids[20:30]
    assert all(fields for _, fields in claimed[1])  # contents still there


async def test_trims_to_retention_once_groups_caught_up(redis: Redis) -> None:
    await fill(redis, 100)
    await redis.xgroup_create(S, "g", id="0")
    rows = await redis.xreadgroup("g", "c", {S: ">"}, count=1000)
    await redis.xack(S, "g", *[eid for eid, _ in rows[0][1]])
    r = await trim_stream(redis, S, max_len=10, max_age_s=0)
    assert r.trimmed == 90
    assert r.held_back_by is None


async def test_missing_stream_is_not_an_error(redis: Redis) -> None:
    r = await trim_stream(redis, "nope", max_len=10, max_age_s=10)
    assert r.trimmed == 0


async def test_new_group_from_start_or_now(redis: Redis) -> None:
    await fill(redis, 10)
    await redis.xgroup_create(S, "existing", id="0")
    before = await redis.xreadgroup("existing", "c", {S: ">"}, count=4)
    await add_group(redis, S, "replay", "start")
    await add_group(redis, S, "live", "now")
    await fill(redis, 3, start_ms=5_000)
    got_replay = await redis.xreadgroup("replay", "c", {S: ">"}, count=100)
    got_live = await redis.xreadgroup("live", "c", {S: ">"}, count=100)
    assert len(got_replay[0][1]) == 13
    assert len(got_live[0][1]) == 3
    # the existing group is untouched: it continues where it was
    after = await redis.xreadgroup("existing", "c", {S: ">"}, count=100)
    assert len(before[0][1]) + len(after[0][1]) == 13
    groups = {g["name"]: g for g in await list_groups(redis, S)}
    assert set(groups) == {"existing", "replay", "live"}
    with pytest.raises(GroupExists):
        await add_group(redis, S, "live", "now")
    assert await remove_group(redis, S, "live")
    assert {g["name"] for g in await list_groups(redis, S)} == {"existing", "replay"}


# ----------------------------------------------------------------------------- the one-script trim
# equals the previous algorithm (kept here as the reference): XRANGE up to LENGTH_SCAN_LIMIT entries
# to the client to learn the length cut, then a script that lowers it to the groups' floor and trims.

_REFERENCE_LUA = """
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


async def reference_trim(
    redis: Redis, stream: str, *, max_len: int, max_age_s: float, now_ms: int, limit: int
) -> tuple[int, str | None, str | None]:
    if not await redis.exists(stream):
        return 0, None, None
    cuts: list[tuple[int, int]] = []
    if max_age_s > 0:
        cuts.append((max(now_ms - int(max_age_s * 1000), 0), 0))
    if max_len > 0:
        excess = int(await redis.xlen(stream)) - max_len
        if excess > 0:
            rows = await redis.xrange(stream, "-", "+", count=min(excess + 1, limit))
            ms, _, seq = rows[-1][0].decode().partition("-")
            cuts.append((int(ms), int(seq)))
    if not cuts:
        return 0, None, None
    ms, seq = max(cuts)
    cut = f"{ms}-{seq}"
    trimmed, final, holder = await redis.register_script(_REFERENCE_LUA)(keys=[stream], args=[cut])
    return int(trimmed), final.decode(), holder.decode() or None


async def build_scenario(redis: Redis, stream: str, rnd: random.Random) -> None:
    """A stream with gaps and deleted entries, groups at various places, some entries pending."""
    ids: list[str] = []
    ms = rnd.randint(1, 3) * 1000
    for _ in range(rnd.randint(1, 60)):
        ms += rnd.choice((0, 1, 1, 5, 50))
        seq = int(ids[-1].split("-")[1]) + 1 if ids and ids[-1].startswith(f"{ms}-") else 0
        ids.append(f"{ms}-{seq}")
        await redis.xadd(stream, {"n": str(len(ids))}, id=ids[-1])
    for eid in ids:
        if rnd.random() < 0.1:
            await redis.xdel(stream, eid)
    for g in range(rnd.randint(0, 3)):
        start = rnd.choice(["0", "$", rnd.choice(ids), f"{ms + 7}-0", "0-1"])
        await redis.xgroup_create(stream, f"g{g}", id=start)
        for c in range(rnd.randint(0, 3)):
            got = await redis.xreadgroup(f"g{g}", f"c{c}", {stream: ">"}, count=rnd.randint(1, 30))
            read = [eid for eid, _ in got[0][1]] if got else []
            acked = [eid for eid in read if rnd.random() < 0.7]
            if acked:
                await redis.xack(stream, f"g{g}", *acked)


@pytest.mark.parametrize("seed", range(12))
async def test_trim_equals_the_reference_algorithm(redis: Redis, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Randomised: same trimmed count, cut, holder and remaining entries as the previous algorithm,
    with every kind of floor (none, below, at, past the length cut; pending; deleted ids), small
    scan limits (several passes to reach the length; the head read when the floor's side is long)."""
    from vigil_shared import retention

    rnd = random.Random(seed)
    for case in range(40):
        a, b = f"ref.{seed}.{case}", f"new.{seed}.{case}"
        state = rnd.getstate()
        await build_scenario(redis, a, rnd)
        rnd.setstate(state)
        await build_scenario(redis, b, rnd)
        limit = rnd.choice((5_000, 2, 4, 9))
        monkeypatch.setattr(retention, "LENGTH_SCAN_LIMIT", limit)
        monkeypatch.setattr(retention, "LAG_SCAN_LIMIT", rnd.choice((256, 0, 1, 5)))
        unlimited = f"all.{seed}.{case}"
        for _ in range(2):  # a second pass from what the first left
            # the references start from the new algorithm's state (COPY keeps the groups and PELs)
            for copy in (a, unlimited):
                await redis.copy(b, copy, replace=True)
            max_len = rnd.choice((0, 1, 3, 10, 20, 40, 100))
            age_s = rnd.choice((0, 0, 1.0, 2.5, 4.0))
            now_ms = 5_000 + rnd.randint(0, 60)
            want = await reference_trim(redis, a, max_len=max_len, max_age_s=age_s, now_ms=now_ms, limit=limit)
            want_all = await reference_trim(
                redis, unlimited, max_len=max_len, max_age_s=age_s, now_ms=now_ms, limit=10**9
            )
            got = await trim_stream(redis, b, max_len=max_len, max_age_s=age_s, now_ms=now_ms)
            context = f"seed {seed} case {case}: max_len {max_len}, age {age_s}, limit {limit}"
            # the scan limit bounds only a head read (a lagging group); without one the pass trims
            # as if there were no limit
            result = (got.trimmed, got.cut, got.held_back_by)
            assert result in (want, want_all), context
            same_as = unlimited if result == want_all else a
            assert [e for e, _ in await redis.xrange(b)] == [e for e, _ in await redis.xrange(same_as)], context


async def test_trim_with_a_group_near_the_tail_reads_only_its_side(redis: Redis) -> None:
    """A healthy group (lag of a few entries): the length rule is applied without reading the
    entries it removes (XTRIM MAXLEN by count)."""
    ids = await fill(redis, 300)
    await redis.xgroup_create(S, "g", id="0")
    await redis.xreadgroup("g", "c", {S: ">"}, count=290)
    await redis.xack(S, "g", *ids[:285])  # 5 pending, 10 unread
    await redis.config_resetstat()
    r = await trim_stream(redis, S, max_len=100, max_age_s=0)
    assert (r.trimmed, r.cut, r.held_back_by) == (200, ids[200].decode(), None)
    stats = await redis.info("commandstats")
    assert stats["cmdstat_xrange"]["calls"] <= 2  # the 15 entries from the floor on; the new first id


async def test_a_stream_far_over_its_limit_is_trimmed_to_it_in_one_pass_while_groups_keep_up(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan limit must not cap trimming that reads nothing: a stream written faster than one
    limit's worth per interval (notifications at 3 per alert) would otherwise grow without bound."""
    from vigil_shared import retention

    monkeypatch.setattr(retention, "LENGTH_SCAN_LIMIT", 50)
    ids = await fill(redis, 400)
    r = await trim_stream(redis, S, max_len=100, max_age_s=0)  # no group at all
    assert (r.trimmed, await redis.xlen(S)) == (300, 100)
    assert r.cut == ids[300].decode()
    await redis.delete(S)
    ids = await fill(redis, 405)
    await redis.xgroup_create(S, "g", id=ids[399])
    await redis.xreadgroup("g", "c", {S: ">"}, count=3)  # a healthy group: 3 pending, 2 unread
    r = await trim_stream(redis, S, max_len=100, max_age_s=0)
    assert (r.trimmed, r.cut, r.held_back_by) == (305, ids[305].decode(), None)
    assert [e for e, _ in await redis.xrange(S)] == ids[305:]


async def test_trim_with_a_lagging_group_reads_the_head_as_before(redis: Redis) -> None:
    ids = await fill(redis, 300)
    await redis.xgroup_create(S, "g", id=ids[3])
    r = await trim_stream(redis, S, max_len=100, max_age_s=0)
    assert (r.trimmed, r.cut, r.held_back_by) == (3, ids[3].decode(), "g")


async def test_processes_sharing_a_redis_take_turns_through_the_lease(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several retention loops on one Redis: about one pass per interval among them, not one each."""
    import asyncio

    from vigil_shared import retention
    from vigil_shared.settings import VigilSettings

    passes: list[str] = []

    async def counting_trim_all(redis: Redis, settings: VigilSettings, names: object = ()) -> list[object]:
        passes.append(settings.consumer_name)
        return []

    monkeypatch.setattr(retention, "trim_all", counting_trim_all)
    loops = [
        asyncio.create_task(
            retention.retention_loop(redis, VigilSettings(retention_interval_s=0.25, consumer_name=f"p{i}"))
        )
        for i in range(3)
    ]
    await asyncio.sleep(2.0)
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    # 3 loops x ~8 passes each without the lease; with it about one per interval (0.2-0.3 s)
    assert 4 <= len(passes) <= 11, passes
    assert await redis.pttl(retention.LEASE_KEY) <= 200


async def test_the_loop_stops_when_a_cancellation_comes_back_as_a_redis_error(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation that the Redis client turns into one of its errors (a cancel landing on its own
    timeout) still stops the retention loop, instead of being retried as a failed pass for ever."""
    import asyncio

    from redis.exceptions import TimeoutError as RedisTimeoutError
    from vigil_shared import retention
    from vigil_shared.settings import VigilSettings

    started = asyncio.Event()

    async def trim_all_that_loses_the_cancel(redis: Redis, settings: VigilSettings, names: object = ()) -> list[object]:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            raise RedisTimeoutError("Timeout reading from socket") from exc
        return []

    monkeypatch.setattr(retention, "trim_all", trim_all_that_loses_the_cancel)
    loop = asyncio.create_task(retention.retention_loop(redis, VigilSettings(retention_interval_s=0.05)))
    await asyncio.wait_for(started.wait(), 5)
    await cancel_and_expect_end(loop, 2, "the retention loop kept running after it was cancelled")


async def test_the_loop_stops_when_a_pass_swallowed_its_cancellation(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation lost inside a pass (redis-py's asyncio client loses one that lands while a command
    is being written, vigil_shared.cancellation) still stops the loop after that pass."""
    import asyncio
    import contextlib

    from vigil_shared import retention
    from vigil_shared.settings import VigilSettings

    started = asyncio.Event()
    passes = 0
    real_trim_all = retention.trim_all

    async def trim_all_that_swallows(redis: Redis, settings: VigilSettings, names: object = ()) -> list[object]:
        nonlocal passes
        passes += 1
        await real_trim_all(redis, settings)
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # the first cancellation is lost
            await asyncio.sleep(10)
        return []

    monkeypatch.setattr(retention, "trim_all", trim_all_that_swallows)
    loop = asyncio.create_task(retention.retention_loop(redis, VigilSettings(retention_interval_s=0.05)))
    await asyncio.wait_for(started.wait(), 5)
    await cancel_and_expect_end(loop, 2, "the retention loop kept running after its pass swallowed the cancellation")
    assert passes == 1
