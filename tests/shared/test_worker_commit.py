"""The fenced commit against a real Redis, both ways (one script with the outputs as arguments, and a
MULTI/EXEC of the outputs' XADDs with the fencing script, for large outputs): per-entry ownership (range
fast path and its exact fallback), outputs in order to several streams, chunked XACK, the safety cap,
and a bad output key failing the whole commit (nothing published, nothing acknowledged)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from vigil_shared import worker
from vigil_shared.worker import commit_encoded

IN, OUT, OUT2, OUT3, GROUP = "commit.in", "commit.out", "commit.out2", "commit.out3", "g"


@pytest.fixture(autouse=True, params=["script", "multi"])
def commit_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test both ways: the size from which a batch is committed by a transaction set to never
    or always."""
    monkeypatch.setattr(worker, "_MULTI_FROM", 10**9 if request.param == "script" else 0)
    monkeypatch.setattr(worker, "_MULTI_MIN_BYTES", 0)
    return str(request.param)


async def read_as(redis: Redis, consumer: str, n: int) -> list[bytes]:
    """Add ``n`` entries to IN and read them all as ``consumer``; their ids in stream order."""
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(IN, {"__data__": f"in-{i}"})
    await pipe.execute()
    with contextlib.suppress(ResponseError):  # BUSYGROUP: a second call
        await redis.xgroup_create(IN, GROUP, id="0")
    ids: list[bytes] = []
    while len(ids) < n:
        reply = await redis.xreadgroup(GROUP, consumer, {IN: ">"}, count=n - len(ids))
        ids += [eid for eid, _ in reply[0][1]]
    return ids


async def pending_ids(redis: Redis, consumer: str | None = None) -> set[bytes]:
    kw = {"consumername": consumer} if consumer else {}
    rows = await redis.xpending_range(IN, GROUP, min="-", max="+", count=100_000, **kw)
    return {r["message_id"] for r in rows}


async def values(redis: Redis, stream: str) -> list[bytes]:
    return [f[b"__data__"] for _, f in await redis.xrange(stream)]


async def test_entries_claimed_by_another_consumer_in_the_middle_of_a_batch_are_fenced(redis: Redis) -> None:
    ids = await read_as(redis, "c1", 5)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=[ids[1], ids[3]])
    results = [(eid, [(OUT, b"out-%d" % i)]) for i, eid in enumerate(ids)]
    done = await commit_encoded(redis, IN, GROUP, "c1", results)
    assert done == {ids[0], ids[2], ids[4]}
    assert await values(redis, OUT) == [b"out-0", b"out-2", b"out-4"]
    assert await pending_ids(redis) == {ids[1], ids[3]}  # still the claimer's to finish
    assert await pending_ids(redis, "c2") == {ids[1], ids[3]}


async def test_already_acknowledged_entries_are_not_published_again(redis: Redis) -> None:
    ids = await read_as(redis, "c1", 3)
    results = [(eid, [(OUT, b"out-%d" % i)]) for i, eid in enumerate(ids)]
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set(ids)
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set()  # a retried commit
    assert await values(redis, OUT) == [b"out-0", b"out-1", b"out-2"]


async def test_ownership_is_exact_beyond_a_truncated_range_and_in_any_order(redis: Redis) -> None:
    # c1 owns 300 entries; a commit of 4 of them spanning the whole range sees only the first 2*4+16
    # rows of the range query, the others are checked one by one
    ids = await read_as(redis, "c1", 300)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=[ids[150]])
    chosen = [ids[0], ids[150], ids[298], ids[299]]
    done = await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, eid)]) for eid in chosen])
    assert done == {ids[0], ids[298], ids[299]}
    # not in stream order (the range query then finds nothing): still exact
    unordered = [ids[200], ids[10], ids[150]]
    done = await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, eid)]) for eid in unordered])
    assert done == {ids[200], ids[10]}
    assert await values(redis, OUT) == [ids[0], ids[298], ids[299], ids[200], ids[10]]
    assert await pending_ids(redis, "c1") == set(ids) - {ids[0], ids[150], ids[298], ids[299], ids[200], ids[10]}
    assert await pending_ids(redis, "c2") == {ids[150]}


async def test_outputs_go_to_their_streams_in_order_and_an_entry_without_outputs_is_acknowledged(
    redis: Redis,
) -> None:
    ids = await read_as(redis, "c1", 3)
    results = [
        (ids[0], [(OUT, b"a"), (OUT2, b"b"), (OUT, b"c")]),
        (ids[1], []),
        (ids[2], [(OUT2, b"d")]),
    ]
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set(ids)
    assert await values(redis, OUT) == [b"a", b"c"]
    assert await values(redis, OUT2) == [b"b", b"d"]
    assert await pending_ids(redis) == set()


async def test_more_acknowledgements_than_one_xack_call_takes(redis: Redis) -> None:
    ids = await read_as(redis, "c1", 2500)
    results = [(eid, [(OUT, eid)]) for eid in ids]
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set(ids)
    assert await redis.xlen(OUT) == 2500
    assert await pending_ids(redis) == set()


async def test_the_safety_cap_trims_the_output_streams(redis: Redis) -> None:
    ids = await read_as(redis, "c1", 1000)
    results = [(eid, [(OUT, eid)]) for eid in ids]
    assert await commit_encoded(redis, IN, GROUP, "c1", results, maxlen=100) == set(ids)
    # MAXLEN ~: whole nodes (100 entries each by default) are dropped, never below the cap
    assert 100 <= await redis.xlen(OUT) <= 200
    assert (await redis.xrevrange(OUT, count=1))[0][1][b"__data__"] == ids[-1]


async def test_no_cap_does_not_trim(redis: Redis) -> None:
    ids = await read_as(redis, "c1", 500)
    assert await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, eid)]) for eid in ids]) == set(ids)
    assert await redis.xlen(OUT) == 500


async def test_an_output_key_that_is_not_a_stream_fails_the_whole_commit(redis: Redis) -> None:
    # the transaction's XADDs to the other streams ran, the script deletes them again before EXEC
    # returns: no reader ever sees them (a stream the transaction made stays, empty)
    ids = await read_as(redis, "c1", 3)
    await redis.xadd(OUT, {"__data__": b"before"})
    await redis.set(OUT2, "not a stream")
    results = [(ids[0], [(OUT, b"a")]), (ids[1], [(OUT2, b"b"), (OUT, b"c")]), (ids[2], [(OUT3, b"d")])]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await commit_encoded(redis, IN, GROUP, "c1", results)
    assert await values(redis, OUT) == [b"before"]  # nothing published ...
    assert await redis.xlen(OUT3) == 0
    assert await redis.get(OUT2) == b"not a stream"
    assert await pending_ids(redis, "c1") == set(ids)  # ... nothing acknowledged: retried later
    await redis.delete(OUT2)
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set(ids)
    assert await values(redis, OUT) == [b"before", b"a", b"c"]
    assert await values(redis, OUT2) == [b"b"]
    assert await values(redis, OUT3) == [b"d"]


async def test_outputs_arrive_byte_for_byte_past_fenced_entries_with_several_outputs(redis: Redis) -> None:
    # the script cuts every id and output out of one binary argument: a fenced entry's outputs must be
    # skipped exactly, and any bytes (CR LF, NUL, non-UTF-8, empty, larger than redis-py's 6000-byte
    # buffer cut-off) must arrive unchanged
    ids = await read_as(redis, "c1", 4)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=[ids[1]])
    odd = [b"", b"\r\n*3\r\n$4\r\n", b"\x00\xff\xfe" * 7, "été ☂".encode(), bytes(range(256)) * 400]
    results = [
        (ids[0], [(OUT, odd[0]), (OUT2, odd[1])]),
        (ids[1], [(OUT, b"fenced-" + odd[4]), (OUT2, b"fenced"), (OUT, b"")]),
        (ids[2], []),
        (ids[3], [(OUT2, odd[2]), (OUT, odd[3]), (OUT, odd[4])]),
    ]
    done = await commit_encoded(redis, IN, GROUP, "c1", results)
    assert done == {ids[0], ids[2], ids[3]}
    assert await values(redis, OUT) == [odd[0], odd[3], odd[4]]
    assert await values(redis, OUT2) == [odd[1], odd[2]]
    assert await pending_ids(redis) == {ids[1]}


def _published(stream: str) -> float:
    from vigil_shared import metrics

    return float(metrics.EVENTS_PUBLISHED.labels(stream=stream)._value.get())


async def test_a_server_that_lost_the_script_gets_it_loaded_again(redis: Redis) -> None:
    """The commit calls the script by its SHA1; after SCRIPT FLUSH (or against a restarted server)
    it loads it again and commits, once."""
    ids = await read_as(redis, "c1", 2)
    await redis.script_flush()
    results = [(eid, [(OUT, b"out-%d" % i)]) for i, eid in enumerate(ids)]
    assert await commit_encoded(redis, IN, GROUP, "c1", results) == set(ids)
    assert await values(redis, OUT) == [b"out-0", b"out-1"]
    assert await pending_ids(redis) == set()


async def test_published_counts_follow_what_was_committed_per_stream(redis: Redis) -> None:
    """vigil_events_published_total per output stream: one stream, several streams, and only the
    committed entries' outputs when some were fenced."""
    before = {s: _published(s) for s in (OUT, OUT2)}
    ids = await read_as(redis, "c1", 3)
    await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, b"a"), (OUT, b"b")]) for eid in ids])
    assert _published(OUT) - before[OUT] == 6
    ids = await read_as(redis, "c1", 3)
    await commit_encoded(redis, IN, GROUP, "c1", [(ids[0], [(OUT, b"a")]), (ids[1], []), (ids[2], [(OUT2, b"b")] * 2)])
    assert (_published(OUT) - before[OUT], _published(OUT2) - before[OUT2]) == (7, 2)
    ids = await read_as(redis, "c1", 3)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=[ids[1]])
    await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, b"a")]) for eid in ids])
    assert _published(OUT) - before[OUT] == 9
    ids = await read_as(redis, "c1", 2)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=[ids[0]])
    await commit_encoded(redis, IN, GROUP, "c1", [(ids[0], [(OUT2, b"x")]), (ids[1], [(OUT, b"y"), (OUT2, b"z")])])
    assert (_published(OUT) - before[OUT], _published(OUT2) - before[OUT2]) == (10, 3)


async def test_large_outputs_are_committed_by_a_transaction_and_small_ones_by_the_script(redis: Redis) -> None:
    await redis.config_resetstat()
    ids = await read_as(redis, "c1", 4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker, "_MULTI_FROM", 1024)
        big = [(eid, [(OUT, b"x" * 2000)]) for eid in ids[:2]]
        assert await commit_encoded(redis, IN, GROUP, "c1", big) == set(ids[:2])
        stats = await redis.info("commandstats")
        assert stats["cmdstat_exec"]["calls"] == 1
        assert "cmdstat_evalsha" not in stats
        small = [(eid, [(OUT, b"x" * 100), (OUT2, b"y")]) for eid in ids[2:]]
        assert await commit_encoded(redis, IN, GROUP, "c1", small) == set(ids[2:])
        stats = await redis.info("commandstats")
        assert stats["cmdstat_exec"]["calls"] == 1  # no second transaction ...
        assert "cmdstat_evalsha" in stats  # ... the script instead
    assert await values(redis, OUT) == [b"x" * 2000] * 2 + [b"x" * 100] * 2
    assert await pending_ids(redis) == set()


async def test_a_batch_of_few_large_outputs_keeps_the_script(redis: Redis) -> None:
    # the transaction's fixed costs (its EVAL's SHA1 of the script, EXEC) are not won back by one or
    # two outputs: a paced load's small batches keep the one-script commit
    await redis.config_resetstat()
    ids = await read_as(redis, "c1", 5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker, "_MULTI_FROM", 1024)
        mp.setattr(worker, "_MULTI_MIN_BYTES", 8192)
        assert await commit_encoded(redis, IN, GROUP, "c1", [(ids[0], [(OUT, b"x" * 3300)])]) == {ids[0]}
        stats = await redis.info("commandstats")
        assert "cmdstat_exec" not in stats
        assert "cmdstat_evalsha" in stats
        four = [(eid, [(OUT, b"y" * 3300)]) for eid in ids[1:]]
        assert await commit_encoded(redis, IN, GROUP, "c1", four) == set(ids[1:])
        stats = await redis.info("commandstats")
        assert stats["cmdstat_exec"]["calls"] == 1
    assert await values(redis, OUT) == [b"x" * 3300] + [b"y" * 3300] * 4
    assert await pending_ids(redis) == set()


async def test_a_reader_blocked_on_an_output_stream_never_gets_a_fenced_entrys_outputs(
    redis: Redis, redis_url: str
) -> None:
    # the transaction's XADDs wake the blocked reader, but the fenced outputs are deleted before the
    # transaction ends: it gets an empty reply (Redis 7.0 serves it after EXEC), never the entries
    ids = await read_as(redis, "c1", 2)
    await redis.xclaim(IN, GROUP, "c2", min_idle_time=0, message_ids=ids)
    await redis.xgroup_create(OUT, "down", id="$", mkstream=True)
    reader = Redis.from_url(redis_url)
    try:
        blocked = asyncio.create_task(reader.xreadgroup("down", "d1", {OUT: ">"}, count=10, block=1000))
        await asyncio.sleep(0.2)
        assert await commit_encoded(redis, IN, GROUP, "c1", [(eid, [(OUT, b"x" * 2000)]) for eid in ids]) == set()
        got = await blocked
        assert [entry for _, entries in (got or []) for entry in entries] == []
    finally:
        await reader.aclose()
    assert await redis.xlen(OUT) == 0
    assert await pending_ids(redis, "c2") == set(ids)
