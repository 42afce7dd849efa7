"""The claim and "sent" scripts cut keys of one width with struct.unpack (up to 200 a call), and the
"sent" script takes the recipient records as NUL-ended strings (JSON when a string holds a NUL, a
record is too long, or a string cannot be encoded): the same keys, values, TTLs and recipient
records as the per-job pipeline (:meth:`Deliverer._queue_sent`) and the one-key claim script."""

from __future__ import annotations

import math
import random
import time

import orjson
import pytest
from vigil_notify.channels.base import Message
from vigil_notify.channels.registry import default_registry
from vigil_notify.delivery import (
    SENT,
    Deliverer,
    DeliveryJob,
    PipelineBatcher,
    RecipientLog,
    _json_records,
    _records,
    idempotency_key,
)

MSG = Message(title="t", text="x", markdown="x", html="x")
HOSTILE = ["", "plain", 'q"uo\\te', "new\nline", "\x01\x1f", "é ü ß 😀 \u2028", "[1,2]", "a|b", " "]


def _jobs(rng: random.Random, n: int, tag: str, strings: list[str]) -> list[DeliveryJob]:
    jobs = []
    for i in range(n):
        origs = tuple(f"{tag}-orig-{rng.randint(0, 4)}{rng.choice(strings)}" for _ in range(rng.randint(0, 2)))
        jobs.append(
            DeliveryJob(
                alert_id=f"{tag}-a{i}", revision=1, correlation_id="c",
                subscription_id=f"sub-{rng.randint(0, 6)}{rng.choice(strings)}",
                channel_url=rng.choice(["console://", "jsonl:///tmp/x.jsonl"]), kind="new",
                reason=f"why {rng.choice(strings)} {i}", idempotency_key=idempotency_key(f"{tag}{i}", 1, "s", "u"),
                message=MSG, record_under=origs,
            )
        )  # fmt: skip
    return jobs


async def _state(redis, d: Deliverer, jobs: list[DeliveryJob]) -> tuple[list, dict]:
    keys = [d.ledger.redis_key(j.idempotency_key) for j in jobs]
    marks = [(await redis.get(k), await redis.ttl(k)) for k in keys]
    origs = sorted({o for j in jobs for o in j.record_under})
    log = RecipientLog(redis, d.settings)
    recs = {o: (await log.recipients([o]), await redis.ttl(log.redis_key(o))) for o in origs}
    return marks, recs


async def _compare(redis, settings, jobs: list[DeliveryJob]) -> None:
    """Marks through the script, then through the per-job pipeline on a flushed database: equal (TTLs
    within a second plus the time the comparison took: on a loaded machine the per-job pipeline and
    the key-by-key reads of a few thousand keys take seconds, which the TTLs count down)."""
    started = time.monotonic()
    d = Deliverer(redis, default_registry(), settings, owner="me")
    await d._mark_sent_many(jobs)
    got = await _state(redis, d, jobs)
    await redis.flushdb()
    batcher = PipelineBatcher(redis)
    for j in jobs:
        await batcher.run(lambda pipe, j=j: d._queue_sent(pipe, j))
    want = await _state(redis, d, jobs)
    slack = 1 + math.ceil(time.monotonic() - started)
    await redis.flushdb()
    assert [v for v, _ in got[0]] == [SENT.encode()] * len(jobs)
    assert [v for v, _ in got[0]] == [v for v, _ in want[0]]
    assert all(abs(a[1] - b[1]) <= slack for a, b in zip(got[0], want[0], strict=True))
    assert all(settings.sent_ttl_s - slack <= ttl <= settings.sent_ttl_s for _, ttl in got[0])
    assert {o: r for o, (r, _) in got[1].items()} == {o: r for o, (r, _) in want[1].items()}
    assert all(abs(got[1][o][1] - want[1][o][1]) <= slack for o in got[1])
    await d.aclose()


async def test_random_marks_equal_the_per_job_pipeline(redis, settings) -> None:
    rng = random.Random(808)
    for n in (1, 3, 199, 200, 201, 450):
        await _compare(redis, settings, _jobs(rng, n, f"n{n}", HOSTILE))


async def test_a_string_holding_a_nul_goes_as_json(redis, settings) -> None:
    rng = random.Random(9)
    jobs = _jobs(rng, 40, "nul", [*HOSTILE, "nul\x00inside", "\x00"])
    assert any("\x00" in j.subscription_id or "\x00" in j.reason for j in jobs)
    await redis.config_resetstat()
    await _compare(redis, settings, jobs)
    # the NUL form was refused before any write, then JSON: per key two SETs by the JSON call (the
    # mark, XX: no lease held the key, then with its TTL) and one by _compare's pipeline
    stats = await redis.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 3 * len(jobs)


async def test_the_nul_form_is_refused_without_a_write(redis, settings) -> None:
    d = Deliverer(redis, default_registry(), settings, owner="me")
    jobs = _jobs(random.Random(3), 5, "refused", ["x\x00y"])
    from vigil_notify.delivered import sent_records
    from vigil_notify.delivery import _keys, channel_hash

    packed, idems = sent_records(jobs, channel_hash)
    args = [SENT, 60, 60, len(jobs), *_keys(d.ledger.redis_key(""), idems), "vigil:notify:recipients:"]
    assert await d._mark_many(args=[*args, *_records(packed)]) == -1
    assert await redis.dbsize() == 0
    assert await d._mark_many(args=[*args, *_json_records(packed)]) == len(jobs)
    await d.aclose()


def test_the_records_forms() -> None:
    packed = [["o1", "m1", "r1", "m2", ""], ["o2", "m", "é😀"]]
    counts, data = _records(packed)
    assert orjson.loads(counts) == [5, 3]
    assert data == "o1\0m1\0r1\0m2\0\0o2\0m\0é😀\0".encode()
    assert _records([]) == ("", "")
    # a record too long for struct.unpack's results, or a string UTF-8 cannot hold: JSON
    from vigil_notify.delivery import _NUL_RECORD_MAX

    long = [["o", *["f"] * _NUL_RECORD_MAX]]
    assert _records(long) == ("json", orjson.dumps(long))
    with pytest.raises(TypeError):  # orjson's error for a lone surrogate, as before
        _records([["o", "m", "\ud800"]])


async def test_a_long_record_goes_as_json(redis, settings) -> None:
    from vigil_notify.delivery import _NUL_RECORD_MAX

    jobs = [
        DeliveryJob(
            alert_id="big", revision=1, correlation_id="c", subscription_id=f"s{i}", channel_url="console://",
            kind="new", reason=f"r{i}", idempotency_key=idempotency_key("big", 1, f"s{i}", "u"), message=MSG,
            record_under=("big-orig",),
        )
        for i in range(_NUL_RECORD_MAX // 2 + 5)
    ]  # fmt: skip
    await _compare(redis, settings, jobs)


async def test_claims_of_many_keys_equal_the_one_key_script(redis, settings) -> None:
    d = Deliverer(redis, default_registry(), settings, owner="me")
    ledger = d.ledger
    for n in (1, 199, 200, 201, 401):
        keys = [idempotency_key(f"claim{n}", 1, f"s{i}", "u") for i in range(n)]
        held = set(range(0, n, 7))
        for i in held:
            await redis.set(ledger.redis_key(keys[i]), "sending:other", ex=100)
        states = await ledger.claim_many(keys)
        assert states == ["sending:other" if i in held else "claimed" for i in range(n)]
        for i, k in enumerate(keys):
            if i not in held:
                assert await ledger.state(k) == "sending:me"  # a lease: "<deadline>|sending:me"
                life = settings.claim_ttl_s + settings.sent_ttl_s  # (the "sent" mark keeps the key's TTL)
                assert life - 10 < await redis.ttl(ledger.redis_key(k)) <= life
        assert await ledger.claim_many(keys) == ["sending:other" if i in held else "sending:me" for i in range(n)]
    await d.aclose()
