"""The idempotency ledger's claims are leases that carry their deadline (``<deadline ms>|sending:<owner>``)
in a key that lives ``claim_ttl_s + sent_ttl_s``, so the "sent" mark keeps the key's TTL: a lease
still holds ``claim_ttl_s``, runs out at its deadline (taken over by the next claim, as an expired
key was), and a sent mark still lives at least ``sent_ttl_s``."""

from __future__ import annotations

from vigil_notify.channels.base import Message
from vigil_notify.channels.registry import default_registry
from vigil_notify.delivery import SENT, Deliverer, DeliveryJob, IdempotencyLedger, _lease_state, idempotency_key

MSG = Message(title="t", text="x", markdown="x", html="x")


async def _now_ms(redis) -> int:
    sec, usec = await redis.time()
    return int(sec) * 1000 + int(usec) // 1000


def _keys(tag: str, n: int) -> list[str]:
    return [idempotency_key(tag, 1, f"s{i}", "jsonl:///x") for i in range(n)]


async def test_a_claim_is_a_lease_with_its_deadline(redis, settings) -> None:
    ledger = IdempotencyLedger(redis, settings, owner="me")
    keys = _keys("lease", 3)
    before = await _now_ms(redis)
    assert await ledger.claim_many(keys[:2]) == ["claimed", "claimed"]
    assert await ledger.claim(keys[2]) == "claimed"
    after = await _now_ms(redis)
    life = settings.claim_ttl_s + settings.sent_ttl_s
    for k in keys:
        raw = (await redis.get(ledger.redis_key(k))).decode()
        state, deadline = _lease_state(raw)
        assert state == "sending:me"
        assert before + settings.claim_ttl_s * 1000 <= deadline <= after + settings.claim_ttl_s * 1000
        assert raw == f"{deadline}|sending:me"
        assert life - 10 < await redis.ttl(ledger.redis_key(k)) <= life
        assert await ledger.state(k) == "sending:me"
    # held: another owner sees this owner's name, as it saw the key's value before
    other = IdempotencyLedger(redis, settings, owner="other")
    assert await other.claim_many(keys) == ["sending:me"] * 3
    assert await other.claim(keys[0]) == "sending:me"


async def test_a_lease_past_its_deadline_is_taken_over(redis, settings) -> None:
    ledger = IdempotencyLedger(redis, settings, owner="me")
    keys = _keys("ranout", 3)
    now = await _now_ms(redis)
    await redis.set(ledger.redis_key(keys[0]), f"{now - 1}|sending:dead", ex=1000)  # ran out
    await redis.set(ledger.redis_key(keys[1]), f"{now + 60_000}|sending:alive", ex=1000)
    await redis.set(ledger.redis_key(keys[2]), "sending:old", ex=1000)  # the earlier format: its TTL holds
    assert await ledger.state(keys[0]) is None
    assert await ledger.claim_many(keys) == ["claimed", "sending:alive", "sending:old"]
    state, deadline = _lease_state((await redis.get(ledger.redis_key(keys[0]))).decode())
    assert state == "sending:me"
    assert deadline >= now + settings.claim_ttl_s * 1000
    assert await redis.ttl(ledger.redis_key(keys[0])) > settings.sent_ttl_s  # the lease's key life again
    # the one-key script decides alike
    await redis.set(ledger.redis_key(keys[0]), f"{now - 1}|sending:dead", ex=1000)
    assert await ledger.claim(keys[0]) == "claimed"
    assert await ledger.claim(keys[1]) == "sending:alive"


async def test_release_and_extend_only_touch_the_owners_lease(redis, settings) -> None:
    me, other = IdempotencyLedger(redis, settings, owner="me"), IdempotencyLedger(redis, settings, owner="other")
    k = _keys("rel", 1)[0]
    assert await me.claim(k) == "claimed"
    await other.release(k)
    await other.extend(k)
    first = (await redis.get(me.redis_key(k))).decode()
    assert _lease_state(first)[0] == "sending:me"
    await redis.expire(me.redis_key(k), 50)
    await me.extend(k)  # the deadline moves on, the key's life with it
    state, deadline = _lease_state((await redis.get(me.redis_key(k))).decode())
    assert state == "sending:me"
    assert deadline >= _lease_state(first)[1]
    assert await redis.ttl(me.redis_key(k)) > settings.sent_ttl_s
    await me.release(k)
    assert await redis.exists(me.redis_key(k)) == 0
    # a lease of the earlier format is released by its owner too
    await redis.set(me.redis_key(k), "sending:me", ex=100)
    await me.release(k)
    assert await redis.exists(me.redis_key(k)) == 0


async def test_the_sent_mark_keeps_the_lease_keys_ttl(redis, settings) -> None:
    d = Deliverer(redis, default_registry(), settings, owner="me")
    keys = _keys("mark", 4)
    assert await d.ledger.claim_many(keys[:3]) == ["claimed"] * 3
    await redis.expire(d.ledger.redis_key(keys[0]), settings.sent_ttl_s + 5)  # (to tell kept from set)
    jobs = [
        DeliveryJob(
            alert_id="a", revision=1, correlation_id="c", subscription_id=f"s{i}", channel_url="jsonl:///x",
            kind="new", reason="r", idempotency_key=k, message=MSG, record_under=(),
        )
        for i, k in enumerate(keys)
    ]  # fmt: skip
    await redis.config_resetstat()
    await d._mark_sent_many(jobs)
    assert [await d.ledger.state(k) for k in keys] == [SENT] * 4
    ttls = [await redis.ttl(d.ledger.redis_key(k)) for k in keys]
    assert settings.sent_ttl_s <= ttls[0] <= settings.sent_ttl_s + 5  # kept, not written again
    life = settings.claim_ttl_s + settings.sent_ttl_s
    assert all(life - 10 < t <= life for t in ttls[1:3])
    assert settings.sent_ttl_s - 10 < ttls[3] <= settings.sent_ttl_s  # no lease held it: sent_ttl_s
    stats = await redis.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 5  # one per key, and the TTL of the key without a lease
    assert "cmdstat_setex" not in stats
    assert "cmdstat_expire" not in stats
    # a later claim sees "sent"
    assert await d.ledger.claim_many(keys) == [SENT] * 4
    await d.aclose()
