"""The dedup registration script's economies (session 10) keep its keys, layout and answers: the same
sightings registered by the script of session 9 (kept below, verbatim) and by the current one leave
the same hashes, title keys and expiries and get the same answers, and a rolling update (replicas
running either script on the same Redis) decides as one script would."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from vigil_ingest.dedup import Registration, Sighting, dedup_key, register_many, unregister_many
from vigil_ingest.identity import alert_id_for
from vigil_shared.streams import key as redis_key

SESSION9_REGISTER_LUA = """
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local res = {}
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local h = KEYS[i]
  local fp_field = 'fp:' .. ARGV[a + 1]
  local seen = redis.call('HGET', h, fp_field)
  if seen then
    redis.call('EXPIRE', h, ttl)
    local cid = redis.call('HGET', h, 'cid:' .. seen) or ''
    res[i] = '0 ' .. seen .. ' ' .. redis.call('HGET', h, 'alert_id') .. ' ' .. cid
  else
    local rev = redis.call('HINCRBY', h, 'revision', 1)
    if rev == 1 then
      redis.call('HSET', h, 'alert_id', ARGV[a + 2])
    end
    redis.call('HSET', h, fp_field, rev)
    if ARGV[a + 3] ~= '' then
      redis.call('HSET', h, 'cid:' .. rev, ARGV[a + 3])
    end
    redis.call('EXPIRE', h, ttl)
    res[i] = '1 ' .. rev .. ' ' .. redis.call('HGET', h, 'alert_id') .. ' ' .. ARGV[a + 3]
  end
  local t = tonumber(ARGV[a + 4])
  if t > 0 then
    redis.call('SET', KEYS[t], ARGV[a + 5], 'EX', ttl)
  end
end
return table.concat(res, '\\n')
"""
TTL_S = 3600


@pytest.fixture
async def two_dbs(ingest_redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two empty databases of the test Redis: one for each script."""
    base = ingest_redis_url.rsplit("/", 1)[0]
    a, b = Redis.from_url(base + "/0"), Redis.from_url(base + "/1")
    await a.flushdb()
    await b.flushdb()
    yield a, b
    await b.flushdb()
    await a.aclose()
    await b.aclose()


async def _register_session9(redis: Redis, sightings: Sequence[Sighting]) -> list[Registration]:
    """Session 9's ``register_many`` (its arguments and answer, verbatim) with its script."""
    ids = [alert_id_for(s.key) for s in sightings]
    keys: list[str] = [dedup_key(alert_id) for alert_id in ids]
    args: list[Any] = [TTL_S, len(sightings)]
    for s, alert_id in zip(sightings, ids, strict=True):
        title_index = 0
        if s.title_key is not None:
            keys.append(redis_key("dedup", s.title_key))
            title_index = len(keys)
        args += (s.fingerprint, alert_id, s.correlation_id or "", title_index, s.key)
    raw = await redis.register_script(SESSION9_REGISTER_LUA)(keys=keys, args=args)
    out: list[Registration] = []
    for s, line in zip(sightings, raw.decode().split("\n"), strict=True):
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


async def _register(redis: Redis, sightings: Sequence[Sighting], old: bool) -> list[Registration]:
    if old:
        return await _register_session9(redis, sightings)
    return await register_many(redis, sightings, ttl_s=TTL_S)


async def _state(redis: Redis) -> dict[bytes, Any]:
    """Every key: its type and value, and its TTL in whole minutes (the scripts run moments apart)."""
    out: dict[bytes, Any] = {}
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        value: Any = await redis.hgetall(key) if kind == b"hash" else await redis.get(key)
        pttl = await redis.pttl(key)
        assert 0 < pttl <= TTL_S * 1000
        out[key] = (kind, value, round(pttl / 60_000))
    return out


def _batches(seed: int, count: int) -> list[list[Sighting]]:
    """Random calls of 1-8 sightings over a few keys, fingerprints and titles: new alerts, duplicates
    (also within a call), revisions (past 10, two digits), flips back to an earlier body, sightings
    with and without a correlation id, with and without a title key."""
    rnd = random.Random(seed)
    keys = [f"url:https://e.test/{i}" for i in range(6)]
    out = []
    serial = 0
    for _ in range(count):
        batch = []
        for _ in range(rnd.randint(1, 8)):
            serial += 1
            key = rnd.choice(keys)
            fp = f"fp{rnd.randint(0, 14)}"
            cid = rnd.choice([None, f"cid-{serial}", f"cid-{serial}"])
            title = rnd.choice([None, f"title:{rnd.randint(0, 3)}"])
            batch.append(Sighting(key, fp, cid, title))
        out.append(batch)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_same_state_and_answers_as_session9s_script(two_dbs: tuple[Redis, Redis], seed: int) -> None:
    old_db, new_db = two_dbs
    for batch in _batches(seed, 60):
        old = await _register(old_db, batch, True)
        new = await _register(new_db, batch, False)
        assert new == old
    assert await _state(new_db) == await _state(old_db)
    assert len(await _state(new_db)) > 6  # hashes and title keys


@pytest.mark.parametrize("seed", [4, 5])
async def test_rolling_update_either_script_on_the_same_redis(two_dbs: tuple[Redis, Redis], seed: int) -> None:
    """Replicas of both versions at once: each call by either script, on hashes either one wrote, is
    answered and leaves the state as the old script alone would have."""
    reference, mixed = two_dbs
    rnd = random.Random(seed)
    for batch in _batches(seed, 80):
        expected = await _register(reference, batch, True)
        old = rnd.choice([True, False])
        assert await _register(mixed, batch, old) == expected
    assert await _state(mixed) == await _state(reference)


async def test_undo_after_either_script(two_dbs: tuple[Redis, Redis]) -> None:
    """unregister_many undoes what either script registered, alike."""
    old_db, new_db = two_dbs
    first = [Sighting("url:https://e.test/u", "fp1", "c1", "title:u"), Sighting("url:https://e.test/v", "fp1", "c2")]
    later = [Sighting("url:https://e.test/u", "fp2", "c3"), Sighting("url:https://e.test/w", "fp1", "c4")]
    for db, old in ((old_db, True), (new_db, False)):
        await _register(db, first, old)
        await _register(db, later, old)
        await unregister_many(db, later)
    assert await _state(new_db) == await _state(old_db)
    assert await new_db.hget(dedup_key(alert_id_for("url:https://e.test/u")), "revision") == b"1"
    again = await _register(new_db, later, False)
    assert [(r.revision, r.is_duplicate) for r in again] == [(2, False), (1, False)]
