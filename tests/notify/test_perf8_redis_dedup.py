"""The content-dedup batch script takes each run of items with one (fingerprint, alert id) as one
group (the fingerprint and id once): the same stored ids, TTLs and answers as :meth:`first_for` one
by one, on random batches (runs, repeats, keys met twice in a batch) and on coalesced calls."""

from __future__ import annotations

import asyncio
import random

from vigil_notify.delivery import Deduplicator, _dedup_groups


def test_groups_are_the_runs_of_one_fingerprint_and_alert_id() -> None:
    items = [("s1", "f", "a"), ("s2", "f", "a"), ("s1", "f", "b"), ("s3", "g", "b"), ("s4", "f", "a")]
    assert _dedup_groups(items) == ["f", "a", ["s1", "s2"], "f", "b", ["s1"], "g", "b", ["s3"], "f", "a", ["s4"]]
    assert _dedup_groups([]) == []
    # flattened back, the groups give the items in order
    back = [(sid, g[0], g[1]) for g in zip(*[iter(_dedup_groups(items))] * 3, strict=True) for sid in g[2]]
    assert back == items


async def test_random_batches_equal_first_for_one_by_one(redis, settings) -> None:
    rng = random.Random(88)
    batch, single = Deduplicator(redis, settings), Deduplicator(redis, settings)
    fps = ["fp-a", "fp-b", 'q"uo\\te', "é😀"]
    for case in range(25):
        checks: list[tuple[str, str, str]] = []
        for _ in range(rng.randint(1, 12)):  # alerts: a run of matched subscribers each
            fp, aid = rng.choice(fps), f"alert-{rng.randint(0, 6)}"
            for _ in range(rng.randint(1, 5)):
                checks.append((f"sub-{rng.randint(0, 5)}", fp, aid))
        got = await batch.first_for_batch(checks)
        # the one-key path on a mirror of the keys (another key prefix is not possible: other subs)
        want = [await single.first_for(f"o{case}-{sid}", fp, aid) for sid, fp, aid in checks]
        assert got == want, case
        for sid, fp, _ in checks:
            raw_b = await redis.hget(f"vigil:notify:fpsubs:{fp}", sid)
            raw_o = await redis.hget(f"vigil:notify:fpsubs:{fp}", f"o{case}-{sid}")
            assert raw_b is not None
            assert raw_b.partition(b"|")[2] == raw_o.partition(b"|")[2]  # the same stored alert id
            assert await redis.ttl(f"vigil:notify:fpsubs:{fp}") > settings.fingerprint_ttl_s - 10
        # next case starts from a clean slate for both
        await redis.flushdb()


async def test_coalesced_calls_get_their_own_answers(redis, settings) -> None:
    d = Deduplicator(redis, settings)
    await d.first_for_batch([("s1", "fp", "old"), ("s2", "fp", "old")])
    a = [("s1", "fp", "new-1"), ("s3", "fp", "new-1")]
    b = [("s2", "fp", "new-2"), ("s3", "fp", "new-2"), ("s4", "fp2", "new-2")]
    await redis.config_resetstat()
    got_a, got_b = await asyncio.gather(d.first_for_batch(a), d.first_for_batch(b))
    assert (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"] == 1  # coalesced
    assert got_a == ["old", None]
    assert got_b == ["old", "new-1", None]
    many = await d.first_for_many(["s1", "s5"], "fp", "new-3")
    assert many == {"s1": "old", "s5": None}
