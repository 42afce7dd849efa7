"""Lag-aware retention and consumer groups against a real Redis."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis
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
