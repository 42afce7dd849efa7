"""vigil_shared.worker.publish_entries (the ninth session's packed MULTI/EXEC of a batch's XADDs) writes what the
shared publish_events writes, trims alike, and fails as a whole, on real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from vigil_shared.envelope import DATA_FIELD, encode_data
from vigil_shared.events import AlertReceived
from vigil_shared.worker import Publication, publish_entries, publish_events


def _events(n: int) -> list[AlertReceived]:
    return [
        AlertReceived(
            alert_id=f"al_{i:020d}",
            correlation_id=f"c{i}",
            producer="ingest",
            source_kind="api",
            source_name="t",
            title=f"Alert {i} \u00e9\u4e2d",
            text="x" * (i * 37 % 2000),
        )
        for i in range(n)
    ]


async def _entries(redis: Redis, stream: str) -> list[Any]:
    return [fields for _, fields in await redis.xrange(stream) or []]


@pytest.mark.parametrize("maxlen", [None, 0, 10, 100_000])
async def test_the_same_entries_as_publish_events(redis: Redis, maxlen: int | None) -> None:
    events = _events(350)
    ours = await publish_entries(redis, "ours", [encode_data(e) for e in events], maxlen)
    theirs = await publish_events(redis, [Publication("theirs", e) for e in events], maxlen)
    assert await _entries(redis, "ours") == await _entries(redis, "theirs")
    assert len(ours) == len(theirs) == 350
    ids = [entry_id for entry_id, _ in await redis.xrange("ours") or []]
    assert ours[-len(ids) :] == ids  # the ids answered are the entries' (trimmed ones first)
    assert await redis.xlen("ours") == await redis.xlen("theirs")
    if maxlen:
        assert await redis.xlen("ours") < 350 or maxlen >= 350
    else:
        assert await redis.xlen("ours") == 350
    # the connection is left clean: the next command reads its own reply
    assert await redis.ping()


async def test_a_key_that_is_not_a_stream_fails_the_whole_batch(redis: Redis) -> None:
    await redis.set("not-a-stream", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await publish_entries(redis, "not-a-stream", [encode_data(e) for e in _events(3)], 1000)
    assert await redis.get("not-a-stream") == b"x"
    assert await redis.ping()


async def test_decoded_replies_and_one_entry(redis: Redis, redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        [data] = [encode_data(e) for e in _events(1)]
        [entry_id] = await publish_entries(client, "s", [data], 5)
        assert isinstance(entry_id, str)
        [(read_id, fields)] = await redis.xrange("s")
        assert read_id.decode() == entry_id
        assert fields == {DATA_FIELD: data}
    finally:
        await client.aclose()
