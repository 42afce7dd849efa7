"""The batch scripts take their items as one JSON argument: any string survives the trip and each
key is touched exactly as the one-key calls touch it."""

from __future__ import annotations

from vigil_notify.channels.base import Message
from vigil_notify.channels.registry import default_registry
from vigil_notify.delivery import (
    SENT,
    Deduplicator,
    Deliverer,
    DeliveryJob,
    IdempotencyLedger,
    RecipientLog,
    Throttle,
    channel_hash,
)

HOSTILE = [
    "plain",
    'q"uo\\te',
    "new\nline\ttab\r",
    "\x00nul\x01\x1f",
    "é ü ß 😀 \u2028",
    "[1,2]",
    "{}",
    "1e3",
    "",
    " ",
    "/slash/",
]


async def test_dedup_batch_equals_one_by_one(redis, settings) -> None:
    d = Deduplicator(redis, settings)
    ids = [h for h in HOSTILE if h]  # an alert id is never empty
    checks = [(f"s{i}", f"fp{i % 3}", aid) for i, aid in enumerate(ids)]
    first = await d.first_for_batch(checks)
    assert first == [None] * len(ids)
    # the same content for the same subscribers from other alerts: the stored ids come back exactly
    again = await d.first_for_batch([(sid, fp, "other") for sid, fp, _ in checks])
    assert again == ids
    for sid, fp, aid in checks:
        assert await d.first_for(sid, fp, "other") == aid
    raw = await redis.hget("vigil:notify:fpsubs:fp1", "s1")
    deadline, _, stored = raw.decode().partition("|")
    assert stored == HOSTILE[1]
    now_ms = int((await redis.time())[0]) * 1000
    assert 0 <= int(deadline) - now_ms <= settings.fingerprint_ttl_s * 1000 + 1000
    assert await redis.ttl("vigil:notify:fpsubs:fp1") > settings.fingerprint_ttl_s - 10


async def test_throttle_batch_equals_one_by_one(redis, settings) -> None:
    s = settings.model_copy(update={"throttle_max": 3})
    t = Throttle(redis, s)
    url = "jsonl:///tmp/x.jsonl"
    batch = await t.allow_many([("sub", url, m) for m in HOSTILE], 1000.5)
    single = Throttle(redis, s)
    one = [await single.allow("sub2", url, m, 1000.5) for m in HOSTILE]
    assert batch == one  # (equal scores rank by member: the same decisions either way)
    assert batch.count(True) >= 3
    assert False in batch
    k = f"vigil:notify:throttle:sub:{channel_hash(url)}"
    assert [m.decode() for m in await redis.zrange(k, 0, -1)] == sorted(HOSTILE, key=lambda m: m.encode())
    assert await redis.zscore(k, HOSTILE[4]) == 1000.5
    # the same members again keep their places; the window slides past them
    again = await t.allow_many([("sub", url, m) for m in HOSTILE[:3]], 1001.0)
    assert again == [await single.allow("sub2", url, m, 1001.0) for m in HOSTILE[:3]]
    assert await t.allow_many([("sub", url, "late")], 1000.5 + s.throttle_window_s + 1) == [True]
    assert [m.decode() for m in await redis.zrange(k, 0, -1)] == ["late"]


async def test_claims_and_marks_batch_equal_one_by_one(redis, settings) -> None:
    ledger = IdempotencyLedger(redis, settings, owner="me")
    keys = [f"k{i}-{h}" for i, h in enumerate(HOSTILE)]
    await redis.set(ledger.redis_key(keys[0]), SENT)
    await redis.set(ledger.redis_key(keys[1]), "sending:other")
    states = await ledger.claim_many(keys)
    assert states == [SENT, "sending:other"] + ["claimed"] * (len(keys) - 2)
    assert await ledger.claim_many(keys[2:]) == ["sending:me"] * (len(keys) - 2)
    assert [await ledger.state(k) for k in keys[2:]] == ["sending:me"] * (len(keys) - 2)
    assert await redis.ttl(ledger.redis_key(keys[2])) > settings.claim_ttl_s - 10

    d = Deliverer(redis, default_registry(), settings, owner="me")
    url = "console://"
    msg = Message(title="t", text="x", markdown="x", html="x")
    jobs = [
        DeliveryJob(
            alert_id="a",
            revision=1,
            correlation_id="c",
            subscription_id=f"sub{i}",
            channel_url=url,
            kind="new",
            reason=f"why {h}",
            idempotency_key=keys[i],
            message=msg,
            record_under=("orig-é\n", f"cap:{h},x"),
        )
        for i, h in enumerate(HOSTILE)
        if i >= 2
    ]
    await d._mark_sent_many(jobs)
    assert [await ledger.state(k) for k in keys[2:]] == [SENT] * len(jobs)
    assert await redis.ttl(ledger.redis_key(keys[3])) > settings.sent_ttl_s - 10
    got = await RecipientLog(redis, settings).recipients(["orig-é\n"])
    assert got == {(j.subscription_id, channel_hash(url)): j.reason for j in jobs}
    for j, h in zip(jobs, HOSTILE[2:], strict=True):
        rec = await RecipientLog(redis, settings).recipients([f"cap:{h},x"])
        assert rec == {(j.subscription_id, channel_hash(url)): j.reason}
        assert await redis.ttl(RecipientLog.redis_key(f"cap:{h},x")) > settings.recipients_ttl_s - 10
    await d._mark_sent_many([])  # nothing to mark: no error
    await d.aclose()


async def test_throttle_batch_with_several_instants_for_one_key(redis, settings) -> None:
    """Checks coalesced from callers at different instants into one script call: each instant trims
    the window as the one-key script does, and every key gets its TTL."""
    import asyncio

    s = settings.model_copy(update={"throttle_max": 2, "throttle_window_s": 100})
    t, single = Throttle(redis, s), Throttle(redis, s)
    url = "jsonl:///tmp/x.jsonl"
    calls = [(1000.0, ["a", "b", "c"]), (1050.0, ["d"]), (1101.0, ["e", "f"]), (1101.0, ["g"]), (1300.0, ["h"])]
    together = await asyncio.gather(*(t.allow_many([("one", url, m) for m in ms], now) for now, ms in calls))
    apart = [[await single.allow("two", url, m, now) for m in ms] for now, ms in calls]
    assert together == apart
    k1, k2 = (f"vigil:notify:throttle:{sid}:{channel_hash(url)}" for sid in ("one", "two"))
    assert await redis.zrange(k1, 0, -1, withscores=True) == await redis.zrange(k2, 0, -1, withscores=True)
    assert await redis.ttl(k1) > 90


async def test_throttle_batch_equals_one_by_one_randomised(redis, settings) -> None:
    """The batch script asks for a rank only when the window holds more than throttle_max members
    (it counts them as it trims and adds): the same decisions and windows as the one-key script,
    through windows that fill up, slide and are met again at several instants within one call."""
    import asyncio
    import random

    rnd = random.Random(7)
    url = "jsonl:///tmp/x.jsonl"
    for case in range(30):
        s = settings.model_copy(update={"throttle_max": rnd.randint(1, 6), "throttle_window_s": rnd.choice((5, 50))})
        batch, single = Throttle(redis, s), Throttle(redis, s)
        now = 1000.0
        for _ in range(4):
            calls = []
            for _ in range(rnd.randint(1, 4)):
                now += rnd.choice((0.0, 0.25, 1.0, 20.0))
                checks = [(f"s{rnd.randint(0, 2)}", f"m{rnd.randint(0, 12)}") for _ in range(rnd.randint(1, 8))]
                calls.append((now, checks))
            together = await asyncio.gather(
                *(batch.allow_many([(f"b{case}{sid}", url, m) for sid, m in checks], at) for at, checks in calls)
            )
            apart = [[await single.allow(f"o{case}{sid}", url, m, at) for sid, m in checks] for at, checks in calls]
            assert together == apart, (case, calls)
        for sid in ("s0", "s1", "s2"):
            kb, ko = (f"vigil:notify:throttle:{p}{case}{sid}:{channel_hash(url)}" for p in ("b", "o"))
            assert await redis.zrange(kb, 0, -1, withscores=True) == await redis.zrange(ko, 0, -1, withscores=True)


async def test_sparse_replies_put_each_value_at_its_item(redis, settings) -> None:
    """The batch scripts reply only for the unusual items (held claims, stored fingerprints); each
    value lands at its own item, the usual value everywhere else, wherever they fall in the batch."""
    ledger = IdempotencyLedger(redis, settings, owner="me")
    keys = [f"sparse{i}" for i in range(12)]
    held = {1: SENT, 5: "sending:other", 6: SENT, 11: "sending:x"}
    for i, state in held.items():
        await redis.set(ledger.redis_key(keys[i]), state)
    assert await ledger.claim_many(keys) == [held.get(i, "claimed") for i in range(12)]

    d = Deduplicator(redis, settings)
    stored = {0: "first é", 4: "x", 9: 'q"'}
    for i, aid in stored.items():
        assert await d.first_for(f"s{i}", "fp", aid) is None
    got = await d.first_for_batch([(f"s{i}", "fp", "new") for i in range(12)])
    assert got == [stored.get(i) for i in range(12)]


async def test_throttle_batch_moves_a_busy_window_to_the_skiplist_encoding(redis, settings) -> None:
    """A window met with ``_SKIPLIST_FROM`` members or more is converted to the skiplist encoding
    (cheap ZADDs), invisibly: the same decisions, members, scores and TTL as the one-key script's
    window (which stays a listpack), and no trace of the long member used to convert it."""
    from vigil_notify.delivery import _SKIPLIST_FROM

    url = "jsonl:///tmp/x.jsonl"
    for limit in (3, _SKIPLIST_FROM + 2, 1000):  # ranks asked for early, across the conversion, never
        s = settings.model_copy(update={"throttle_max": limit, "throttle_window_s": 100})
        batch, single = Throttle(redis, s), Throttle(redis, s)
        kb, ko = (f"vigil:notify:throttle:{p}{limit}:{channel_hash(url)}" for p in ("b", "o"))
        members = [f"alert-{i:03d}:{i % 3}" for i in range(_SKIPLIST_FROM + 8)]
        calls = [
            (1000.0, members[: _SKIPLIST_FROM - 1]),  # below the threshold: stays a listpack
            (1001.0, members[_SKIPLIST_FROM - 1 : _SKIPLIST_FROM + 4]),  # met at threshold - 1: not yet
            (1002.0, members[_SKIPLIST_FROM + 4 :] + members[:2]),  # met past it: converted, then added to
            (1080.0, [*members[5:9], "late:1"]),  # the window slides; members met again keep their places
        ]
        encodings = []
        for now, ms in calls:
            together = await batch.allow_many([(f"b{limit}", url, m) for m in ms], now)
            apart = [await single.allow(f"o{limit}", url, m, now) for m in ms]
            assert together == apart, (limit, now)
            encodings.append((await redis.object("encoding", kb)).decode())
            assert await redis.zrange(kb, 0, -1, withscores=True) == await redis.zrange(ko, 0, -1, withscores=True)
        assert encodings == ["listpack", "listpack", "skiplist", "skiplist"]
        assert (await redis.object("encoding", ko)).decode() == "listpack"
        assert await redis.zscore(kb, "~" * 256) is None
        assert 90 < await redis.ttl(kb) <= 100
    # trimmed below the threshold, a skiplist window stays one (Redis does not convert back on removal)
    assert await batch.allow_many([(f"b{limit}", url, "later:1")], 1179.5) == [True]
    assert await redis.zcard(kb) == 2
    assert (await redis.object("encoding", kb)).decode() == "skiplist"


def test_keys_are_fixed_width_only_when_every_key_has_one_length_in_bytes() -> None:
    """The claim and "sent" scripts cut keys of one width by offset; anything else is joined by a
    character that no key holds ("\\n" unless a key has one)."""
    from vigil_notify.delivery import _joined, _keys, idempotency_key

    idems = [idempotency_key(f"a{i}", 1, "s", "jsonl:///x") for i in range(5)]
    assert _keys("p:", idems) == (34, "", "p:" + "p:".join(idems))
    assert _keys("p:", ["ab", "abc"]) == (0, "\n", "p:ab\np:abc")
    # one length in characters, not in bytes: joined, not cut by offset
    assert _keys("p:", ["é" * 4, "e" * 4]) == (0, "\n", "p:éééé\np:eeee")
    # a key holding "\n" (and another "\x00"): the first character no key holds
    width, sep, data = _keys("p:", ["a\nb", "c\x00d", "e"])
    assert (width, sep) == (0, "\x01")
    assert data.split(sep) == ["p:a\nb", "p:c\x00d", "p:e"]
    assert _joined(["x"]) == ("\n", "x")
    assert _joined(["", ""]) == ("\n", "\n")


async def test_claims_and_marks_of_one_width_and_of_mixed_widths(redis, settings) -> None:
    """Claims and "sent" marks through each way of passing the keys: one width (every idempotency
    key), mixed lengths, one length in characters but not in bytes, keys holding the separator."""
    from vigil_notify.delivery import idempotency_key

    d = Deliverer(redis, default_registry(), settings, owner="me")
    ledger = d.ledger
    msg = Message(title="t", text="x", markdown="x", html="x")
    cases = {
        "width": [idempotency_key(f"w{i}", 1, "s", "jsonl:///x") for i in range(7)],
        "mixed": ["m1", "m22", "m333", "m4444"],
        "bytes": ["éé", "ee", "ßß"],
        "sep": ["s\n1", "s2", "\n", "s\x004"],
    }
    for name, keys in cases.items():
        # another owner's lease of the earlier format (no deadline: its key's TTL)
        await redis.set(ledger.redis_key(keys[1]), "sending:other", ex=settings.claim_ttl_s)
        states = await ledger.claim_many(keys)
        assert states == ["claimed", "sending:other"] + ["claimed"] * (len(keys) - 2), name
        assert await ledger.claim_many(keys) == ["sending:me", "sending:other"] + ["sending:me"] * (len(keys) - 2)
        jobs = [
            DeliveryJob(
                alert_id="a", revision=1, correlation_id="c", subscription_id=f"{name}{i}",
                channel_url="console://", kind="new", reason=f"why {i}", idempotency_key=k, message=msg,
                record_under=(f"orig-{name}",),
            )
            for i, k in enumerate(keys)
        ]  # fmt: skip
        await d._mark_sent_many(jobs)
        assert [await ledger.state(k) for k in keys] == [SENT] * len(keys), name
        for k in keys:
            # the mark keeps the key's TTL: a lease's key lives claim_ttl_s + sent_ttl_s, so at least
            # sent_ttl_s from now; the other owner's lease of the earlier format keeps its own
            ttl = await redis.ttl(ledger.redis_key(k))
            if k == keys[1]:
                assert 0 < ttl <= settings.claim_ttl_s
            else:
                assert settings.sent_ttl_s < ttl <= settings.sent_ttl_s + settings.claim_ttl_s
        got = await RecipientLog(redis, settings).recipients([f"orig-{name}"])
        assert got == {(j.subscription_id, channel_hash("console://")): j.reason for j in jobs}
        # no key was touched but the ones named
        found = {k.decode() async for k in redis.scan_iter(match=ledger.redis_key("") + "*")}
        assert {ledger.redis_key(k) for k in keys} <= found
    assert len({k async for k in redis.scan_iter(match=ledger.redis_key("") + "*")}) == sum(map(len, cases.values()))
    await d.aclose()


async def test_throttle_batch_trims_at_the_same_cut_off_as_the_one_key_script(redis, settings) -> None:
    """The batch script formats each instant's cut-off once (as redis.call formats a number); the
    members scored at or around the cut-off leave the window exactly when the one-key script's do."""
    s = settings.model_copy(update={"throttle_max": 1000, "throttle_window_s": 3600})
    batch, single = Throttle(redis, s), Throttle(redis, s)
    url = "jsonl:///tmp/x.jsonl"
    t0 = 1764131234.123456
    for i, now in enumerate([t0, t0 + 1e-6, t0 + 0.1, t0 + 3600, t0 + 3600 + 1e-6, t0 + 3600.1, t0 + 7200.05]):
        together = await batch.allow_many([("b", url, f"m{i}"), ("b", url, f"n{i}")], now)
        apart = [await single.allow("o", url, m, now) for m in (f"m{i}", f"n{i}")]
        assert together == apart
        kb, ko = (f"vigil:notify:throttle:{sid}:{channel_hash(url)}" for sid in ("b", "o"))
        assert await redis.zrange(kb, 0, -1, withscores=True) == await redis.zrange(ko, 0, -1, withscores=True), i
