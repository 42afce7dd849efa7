"""Content dedup kept as one hash per fingerprint (a field per subscriber holding its deadline and
the first alert id): each (subscriber, fingerprint) still counts for ``fingerprint_ttl_s`` from when
it was stored, as the key per pair with its own TTL did, and the matches of one alert take one key."""

from __future__ import annotations

from vigil_notify.delivery import Deduplicator


async def _now_ms(redis) -> int:
    sec, usec = await redis.time()
    return int(sec) * 1000 + int(usec) // 1000


async def test_one_hash_per_fingerprint_with_each_deadline(redis, settings) -> None:
    d = Deduplicator(redis, settings)
    before = await _now_ms(redis)
    assert await d.first_for_batch([("s1", "fp", "a|1"), ("s2", "fp", "a|1"), ("s3", "fp", "a|1")]) == [None] * 3
    after = await _now_ms(redis)
    k = Deduplicator.redis_key("fp")
    assert k == "vigil:notify:fpsubs:fp"
    assert [x async for x in redis.scan_iter(match="vigil:notify:fp*")] == [k.encode()]  # one key
    stored = await redis.hgetall(k)
    assert set(stored) == {b"s1", b"s2", b"s3"}
    ttl_ms = settings.fingerprint_ttl_s * 1000
    for raw in stored.values():
        deadline, _, aid = raw.decode().partition("|")
        assert aid == "a|1"  # (an id holding the separator comes back whole)
        assert before + ttl_ms <= int(deadline) <= after + ttl_ms
    assert before + ttl_ms <= await redis.pexpiretime(k) <= after + ttl_ms
    # another alert with that content: the first id comes back, nothing is overwritten
    assert await d.first_for_batch([("s2", "fp", "b"), ("s4", "fp", "b")]) == ["a|1", None]
    assert (await redis.hget(k, "s2")).decode().endswith("|a|1")
    # the same alert again is not a duplicate of itself
    assert await d.first_for("s1", "fp", "a|1") is None


async def test_a_field_past_its_deadline_counts_as_absent(redis, settings) -> None:
    d = Deduplicator(redis, settings)
    k = Deduplicator.redis_key("fp")
    now = await _now_ms(redis)
    # s1's entry expired a second ago (written long ago), s2's still holds for a minute
    await redis.hset(k, mapping={"s1": f"{now - 1000}|old", "s2": f"{now + 60_000}|kept"})
    await redis.pexpireat(k, now + 60_000)
    assert await d.first_for_batch([("s1", "fp", "new"), ("s2", "fp", "new")]) == [None, "kept"]
    deadline, _, aid = (await redis.hget(k, "s1")).decode().partition("|")
    assert aid == "new"
    assert int(deadline) >= now + settings.fingerprint_ttl_s * 1000
    assert (await redis.hget(k, "s2")).decode() == f"{now + 60_000}|kept"
    # the key lives as long as its latest deadline
    assert await redis.pexpiretime(k) == int(deadline)


async def test_nothing_written_leaves_the_expiry_alone(redis, settings) -> None:
    d = Deduplicator(redis, settings)
    k = Deduplicator.redis_key("fp")
    now = await _now_ms(redis)
    await redis.hset(k, "s1", f"{now + 60_000}|old")
    await redis.pexpireat(k, now + 60_000)
    assert await d.first_for("s1", "fp", "new") == "old"
    assert await redis.pexpiretime(k) == now + 60_000
