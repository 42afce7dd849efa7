"""The batch throttle script converts a window to the skiplist encoding when it is met with
``_SKIPLIST_FROM`` members, and also when it grows to ``_SKIPLIST_GROWN`` members within one call:
the decisions, members, scores and TTL stay those of the one-key script (whose windows stay
listpacks), on fixed and on random call sequences."""

from __future__ import annotations

import random

from vigil_notify.delivery import _SKIPLIST_FROM, _SKIPLIST_GROWN, Throttle, channel_hash

URL = "jsonl:///tmp/x.jsonl"
LONG = "~" * 256


def _key(sid: str) -> str:
    return f"vigil:notify:throttle:{sid}:{channel_hash(URL)}"


async def _same(redis, sid_b: str, sid_o: str) -> None:
    kb, ko = _key(sid_b), _key(sid_o)
    assert await redis.zrange(kb, 0, -1, withscores=True) == await redis.zrange(ko, 0, -1, withscores=True)
    assert await redis.zscore(kb, LONG) is None
    ttl_b, ttl_o = await redis.ttl(kb), await redis.ttl(ko)
    assert abs(ttl_b - ttl_o) <= 1


async def test_a_window_that_grows_within_one_call_is_converted_there(redis, settings) -> None:
    assert _SKIPLIST_FROM + 4 < _SKIPLIST_GROWN  # (test_batch_scripts: met at FROM - 1, 5 more: stays a listpack)
    for limit in (2, _SKIPLIST_GROWN - 1, _SKIPLIST_GROWN + 3, 1000):
        s = settings.model_copy(update={"throttle_max": limit, "throttle_window_s": 100})
        batch, single = Throttle(redis, s), Throttle(redis, s)
        members = [f"alert-{i:03d}:1" for i in range(_SKIPLIST_GROWN + 10)]
        # a new window: listpack below _SKIPLIST_GROWN members, then converted in the same call
        together = await batch.allow_many([(f"b{limit}", URL, m) for m in members], 1000.0)
        apart = [await single.allow(f"o{limit}", URL, m, 1000.0) for m in members]
        assert together == apart
        assert together == [i < limit for i in range(len(members))]
        assert (await redis.object("encoding", _key(f"b{limit}"))).decode() == "skiplist"
        assert (await redis.object("encoding", _key(f"o{limit}"))).decode() == "listpack"
        await _same(redis, f"b{limit}", f"o{limit}")
    # one short of _SKIPLIST_GROWN in a call: stays a listpack
    s = settings.model_copy(update={"throttle_max": 1000, "throttle_window_s": 100})
    batch = Throttle(redis, s)
    members = [f"short-{i}:1" for i in range(_SKIPLIST_GROWN - 1)]
    assert await batch.allow_many([("short", URL, m) for m in members], 1000.0) == [True] * len(members)
    assert (await redis.object("encoding", _key("short"))).decode() == "listpack"
    # a window trimmed within the call and growing again: converted once, same results
    single = Throttle(redis, s)
    calls = [(1000.0, [f"x{i}:1" for i in range(_SKIPLIST_GROWN - 2)])]
    calls.append((1150.0, [f"y{i}:1" for i in range(_SKIPLIST_GROWN + 2)]))
    for now, ms in calls:
        together = await batch.allow_many([("trim", URL, m) for m in ms], now)
        apart = [await single.allow("trim-o", URL, m, now) for m in ms]
        assert together == apart
        await _same(redis, "trim", "trim-o")
    assert (await redis.object("encoding", _key("trim"))).decode() == "skiplist"


async def test_random_call_sequences_equal_the_one_key_script(redis, settings) -> None:
    rng = random.Random(8)
    for case in range(12):
        limit = rng.choice([1, 3, _SKIPLIST_FROM, _SKIPLIST_GROWN, 50, 10_000])
        window = rng.choice([5, 30, 100])
        s = settings.model_copy(update={"throttle_max": limit, "throttle_window_s": window})
        batch, single = Throttle(redis, s), Throttle(redis, s)
        subs = [f"r{case}-{j}" for j in range(3)]
        now = 1_764_131_234.0 + rng.random()
        for _ in range(rng.randint(1, 6)):
            now += rng.choice([0.0, 0.5, 3.0, window / 2, window + 1.0])
            checks = [
                (rng.choice(subs), URL, f"a{rng.randint(0, 3 * _SKIPLIST_GROWN)}:{rng.randint(1, 2)}")
                for _ in range(rng.randint(1, 3 * _SKIPLIST_GROWN))
            ]
            together = await batch.allow_many(checks, now)
            apart = [await single.allow(f"o-{sid}", url, m, now) for sid, url, m in checks]
            assert together == apart, (case, now)
            for sid in subs:
                await _same(redis, sid, f"o-{sid}")


async def test_coalesced_calls_at_two_instants_equal_the_one_key_script(redis, settings) -> None:
    """Calls of one event-loop turn are coalesced into one script call; at two instants, the script
    takes its items one by one (the path for more than one instant), with the same results."""
    import asyncio

    for limit in (2, 5, 1000):
        s = settings.model_copy(update={"throttle_max": limit, "throttle_window_s": 10})
        batch, single = Throttle(redis, s), Throttle(redis, s)
        first = [(f"c{limit}-{j % 2}", URL, f"a{j}:1") for j in range(7)]
        second = [(f"c{limit}-{j % 3}", URL, f"b{j}:1") for j in range(6)] + first[:2]
        await batch.allow_many([("warm", URL, "w:1")], 4000.0)  # (the script loaded: EVALSHA from here on)
        await redis.config_resetstat()
        got = await asyncio.gather(batch.allow_many(first, 5000.0), batch.allow_many(second, 5011.5))
        assert (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"] == 1  # coalesced
        apart = [
            [await single.allow(f"o-{sid}", url, m, now) for sid, url, m in checks]
            for checks, now in ((first, 5000.0), (second, 5011.5))
        ]
        assert got == apart
        for j in range(3):
            await _same(redis, f"c{limit}-{j}", f"o-c{limit}-{j}")


async def test_one_zadd_per_window_within_the_limit(redis, settings) -> None:
    """At one instant, a window that stays within the limit with all its items gets them in one
    ZADD (commandstats); one that would not takes them one by one, ranks asked for."""
    s = settings.model_copy(update={"throttle_max": 6, "throttle_window_s": 100})
    t = Throttle(redis, s)
    small = [("w-small", URL, f"s{j}:1") for j in range(5)]
    big = [("w-big", URL, f"b{j}:1") for j in range(9)]
    checks = [c for pair in zip(big[:5], small, strict=True) for c in pair] + big[5:]  # interleaved
    await redis.config_resetstat()
    got = await t.allow_many(checks, 7000.0)
    stats = await redis.info("commandstats")
    single = Throttle(redis, s)
    assert got == [await single.allow(f"o-{sid}", url, m, 7000.0) for sid, url, m in checks]
    assert got == [sid == "w-small" or int(m[1:-2]) < 6 for sid, _, m in checks]
    # w-small: one ZADD; w-big: one per item, and one more to convert it when it reaches 9 members
    assert _SKIPLIST_GROWN == 9
    assert stats["cmdstat_zadd"]["calls"] == 1 + 9 + 1
    assert stats["cmdstat_zrank"]["calls"] == 9 - 6  # (asked once the window holds more than 6)
