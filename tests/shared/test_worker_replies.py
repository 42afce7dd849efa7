"""The replies a transaction's round trip drops (:func:`vigil_shared.worker._skip_replies`: its
``QUEUED`` replies, read from the hiredis reader in one loop instead of one ``read_response`` each)
against a real Redis: the same reply comes back, and the same error is raised, as when every reply
goes through redis-py's ``read_response`` (the pure-Python parser's path), with replies split across
socket reads, a push message among them, and a command refused while queueing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from vigil_shared import worker
from vigil_shared.worker import _command, _round_trip, commit_encoded, publish_entries


@pytest.fixture(params=["hiredis", "python"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Redis]:
    """A RESP3 client whose replies come in 7-byte socket reads (a reply spans several reads), with
    hiredis's parser (the fast path) or redis-py's own (``read_response`` per reply)."""
    parser = _AsyncHiredisParser if request.param == "hiredis" else _AsyncRESP3Parser
    c = Redis.from_url(redis_url, protocol=3, socket_read_size=7, parser_class=parser)
    yield c
    await c.aclose()


@pytest.fixture
def fast_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many replies each call of ``_skip_replies`` read by the fast path (hiredis's reader)."""
    seen: list[int] = []
    real = worker._skip_replies

    async def spy(conn: Any, n: int) -> None:
        if type(conn._parser) is worker._HiredisParser:
            seen.append(n)
        await real(conn, n)

    monkeypatch.setattr(worker, "_skip_replies", spy)
    return seen


def packed(*commands: list[bytes]) -> list[bytes]:
    return [chunk for cmd in commands for chunk in _command(cmd)]


async def test_a_transaction_of_many_commands_replies_as_with_read_response(
    client: Redis, fast_reads: list[int]
) -> None:
    datas = [b"v%d" % i + b"x" * (i % 50) for i in range(300)]
    ids = await publish_entries(client, "replies.out", datas, None)
    assert len(ids) == 300
    assert [f[b"__data__"] for _, f in await client.xrange("replies.out")] == datas
    assert [eid for eid, _ in await client.xrange("replies.out")] == ids
    parser = (await client.connection_pool.get_connection())._parser  # type: ignore[no-untyped-call]
    assert fast_reads == ([301] if type(parser) is worker._HiredisParser else [])


async def test_a_push_message_among_the_replies_is_handled_not_counted(client: Redis) -> None:
    # the client tracks k (RESP3 CLIENT TRACKING), then changes it: Redis sends an invalidation
    # push after SET's reply, among the replies dropped; the reply returned is still the fifth
    await client.set("k", "0")
    cmds = [[b"CLIENT", b"TRACKING", b"ON"], [b"GET", b"k"], [b"SET", b"k", b"1"], [b"PING"], [b"ECHO", b"fifth"]]
    assert await _round_trip(client, packed(*cmds), 4) == b"fifth"
    assert await client.echo("next") == b"next"  # nothing left unread on the connection


async def test_a_command_refused_while_queueing_raises_its_error(client: Redis) -> None:
    cmds = [[b"MULTI"], [b"XADD", b"replies.out", b"*", b"f", b"v"], [b"XADD", b"replies.out"], [b"EXEC"]]
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        await _round_trip(client, packed(*cmds), 3)
    assert await client.xlen("replies.out") == 0  # EXEC refused the transaction
    assert await client.ping()  # the connection was closed, a new one serves


async def test_a_commit_by_transaction_with_split_replies(client: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_MULTI_FROM", 0)
    monkeypatch.setattr(worker, "_MULTI_MIN_BYTES", 0)
    for i in range(40):
        await client.xadd("replies.in", {"__data__": b"in-%d" % i})
    await client.xgroup_create("replies.in", "g", id="0")
    reply = await client.xreadgroup("g", "c1", {"replies.in": ">"}, count=40)
    ids = [eid for eid, _ in reply[b"replies.in"][0]] if isinstance(reply, dict) else [eid for eid, _ in reply[0][1]]
    await client.xclaim("replies.in", "g", "c2", min_idle_time=0, message_ids=[ids[7]])
    results = [(eid, [("replies.out", b"o%d" % i), ("replies.out", b"p%d" % i)]) for i, eid in enumerate(ids)]
    assert await commit_encoded(client, "replies.in", "g", "c1", results) == set(ids) - {ids[7]}
    expected = [v for i in range(40) if i != 7 for v in (b"o%d" % i, b"p%d" % i)]
    assert [f[b"__data__"] for _, f in await client.xrange("replies.out")] == expected
