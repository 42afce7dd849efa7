"""The process client's C command packing (vigil_shared.runtime.HiredisPacking): byte for byte what
redis-py's own asyncio packer sends, its fallbacks for the argument types the two encode differently,
and a real round trip through ``redis_client``."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError
from vigil_shared import runtime
from vigil_shared.runtime import HiredisPacking, redis_client, with_hiredis_packing

PackingConnection = with_hiredis_packing(Connection)


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    A = "a"


def packed(connection: Any, args: tuple[Any, ...]) -> bytes:
    return b"".join(bytes(chunk) for chunk in connection.pack_command(*args))


PLAIN_COMMANDS: list[tuple[Any, ...]] = [
    ("PING",),
    ("SET", "k", "v"),
    (b"SET", b"k", b""),
    ("SET", "clé", "été ☂ \x00 \r\n"),
    ("CONFIG GET", "maxmemory"),  # a command name of two words is sent as two arguments
    (b"CONFIG GET", b"maxmemory"),
    ("CLIENT  SETNAME", "x"),  # several spaces, as str.split() does
    ("XADD", "s", "MAXLEN", "~", 1_000_000, "*", "__data__", bytes(range(256)) * 100),  # > 6000-byte cut-off
    ("ZADD", "z", 0.1, "a", -0.0, "b", 1e300, "c", float("inf"), "d", float("-inf"), "e", 1.5e-7, "f"),
    ("SET", "k", float("nan")),
    ("INCRBY", "k", -(2**70)),
    ("EVALSHA", "a" * 40, 2, "in", "out", *[b"x" * n for n in range(0, 7000, 97)]),
]


@pytest.mark.parametrize("args", PLAIN_COMMANDS, ids=lambda a: str(a[0])[:20])
def test_the_c_packer_sends_the_same_bytes_as_redis_py(args: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[int] = []
    real = runtime.hiredis_pack_command

    def counting(command: tuple[Any, ...]) -> bytes:
        used.append(1)
        return real(command)

    monkeypatch.setattr(runtime, "hiredis_pack_command", counting)
    assert packed(PackingConnection(), args) == packed(Connection(), args)
    assert used == [1]  # the C packer made them, not the fallback


FALLBACK_COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "k", memoryview(b"abc")),
    ("SET", "k", bytearray(b"abc")),
    ("SET", "k", Colour.RED),  # redis-py sends repr() of an int subclass; hiredis would send "1"
    ("SET", "k", Name.A),
    (memoryview(b"PING"),),
]


@pytest.mark.parametrize("args", FALLBACK_COMMANDS, ids=lambda a: type(a[-1]).__name__)
def test_other_argument_types_take_redis_pys_packer(args: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(command: tuple[Any, ...]) -> bytes:
        raise AssertionError("the C packer must not be used for these")

    monkeypatch.setattr(runtime, "hiredis_pack_command", refuse)
    try:
        expected = packed(Connection(), args)
    except Exception as exc:  # whatever redis-py does with it, the packing connection does too
        with pytest.raises(type(exc)):
            packed(PackingConnection(), args)
        return
    assert packed(PackingConnection(), args) == expected


@pytest.mark.parametrize("bad", [True, None, object(), 1j])
def test_invalid_arguments_fail_as_in_redis_py(bad: Any) -> None:
    with pytest.raises(DataError) as plain:
        packed(Connection(), ("SET", "k", bad))
    with pytest.raises(DataError) as ours:
        packed(PackingConnection(), ("SET", "k", bad))
    assert str(ours.value) == str(plain.value)


def test_a_string_that_is_not_utf8_encodable_fails_as_in_redis_py() -> None:
    with pytest.raises(UnicodeEncodeError):
        packed(Connection(), ("SET", "k", "\udcff"))
    with pytest.raises(UnicodeEncodeError):
        packed(PackingConnection(), ("SET", "k", "\udcff"))


def test_another_encoding_takes_redis_pys_packer() -> None:
    args = ("SET", "k", "été")
    latin = packed(Connection(encoding="latin-1"), args)
    assert packed(PackingConnection(encoding="latin-1"), args) == latin != packed(Connection(), args)


def test_each_url_scheme_keeps_its_connection_class() -> None:
    for url, base in (
        ("redis://localhost:6399/0", Connection),
        ("rediss://localhost:6399/0", SSLConnection),
        ("unix:///tmp/vigil-test.sock", UnixDomainSocketConnection),
    ):
        cls = redis_client(url).connection_pool.connection_class
        assert issubclass(cls, HiredisPacking), url
        assert issubclass(cls, base), url
    assert with_hiredis_packing(PackingConnection) is PackingConnection
    assert with_hiredis_packing(Connection) is PackingConnection


async def test_commands_and_scripts_round_trip_through_the_process_client(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        value = "été ☂ \r\n".encode() + bytes(range(256)) * 50
        assert await client.set("packing:k", value)
        assert await client.get("packing:k") == value
        assert await client.config_get("maxmemory")  # a two-word command name
        script = client.register_script("return {#ARGV, ARGV[#ARGV], KEYS[1]}")
        args = [b"x" * n for n in range(0, 9000, 300)] + [7, 0.5, "é"]
        assert await script(keys=["packing:k"], args=args) == [len(args), "é".encode(), b"packing:k"]
    finally:
        await client.delete("packing:k")
        await client.aclose()
