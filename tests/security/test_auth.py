"""API keys (vigil_shared.auth): hashed, constant-time, source stamping, roles, rate limit, CLI."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from redis.asyncio import Redis
from typer.testing import CliRunner
from vigil_ingest.api import build_router as ingest_router
from vigil_ingest.settings import IngestSettings
from vigil_notify.api import build_router as notify_router
from vigil_notify.subscriptions import SubscriptionStore
from vigil_shared import auth, streams
from vigil_shared.auth import ApiKey, KeyConfigError, KeyRing, Role, hash_key, new_key, parse_entries
from vigil_shared.envelope import decode_entry
from vigil_shared.health import build_http_app

INGEST_KEY = new_key()
ADMIN_KEY = new_key()
KEYS = (
    f"embassy-feed:ingest:{hash_key(INGEST_KEY).hex()},"
    f"ops:admin:{hash_key(ADMIN_KEY).hex()}"
)  # fmt: skip
ALERT = {"title": "Curfew in Bamako", "text": "A curfew applies from 21:00.", "source": "someone-else"}


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_API_KEYS", KEYS)
    monkeypatch.setenv("VIGIL_AUTH_DISABLED", "false")
    monkeypatch.setenv("VIGIL_API_RATE_PER_S", "1000")


def _app(redis: Redis) -> httpx.AsyncClient:
    routers = [ingest_router(redis, IngestSettings()), notify_router(SubscriptionStore(redis))]
    app = build_http_app(title="t", routers=routers, redis=redis, workers=[], background=[])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vigil.test")


@pytest.fixture
async def api(redis: Redis, keys_env: None) -> AsyncIterator[httpx.AsyncClient]:
    async with _app(redis) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- keys


def test_only_hashes_are_configured_and_the_key_verifies() -> None:
    key = new_key()
    ring = KeyRing(parse_entries(f"a:ingest:{hash_key(key).hex()}"))
    found = ring.verify(key)
    assert found is not None
    assert (found.name, found.role) == ("a", Role.INGEST)
    assert ring.verify(key + "x") is None
    assert key not in found.line()


def test_plaintext_key_in_config_is_refused_without_echoing_it() -> None:
    key = new_key()
    with pytest.raises(KeyConfigError) as info:
        parse_entries(f"a:ingest:{key}")
    assert key not in str(info.value)
    with pytest.raises(KeyConfigError, match="role"):
        parse_entries(f"a:root:{'0' * 64}")


def test_comparison_is_constant_time_against_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    ring = KeyRing(parse_entries(KEYS))
    ring.verify(INGEST_KEY)  # matches the first key: still compared with all of them
    assert len(calls) == 2


def test_keys_file(tmp_path) -> None:
    f = tmp_path / "keys"
    f.write_text(f"# comment\nembassy-feed:ingest:{hash_key(INGEST_KEY).hex()}\n")
    assert KeyRing.load("", f).verify(INGEST_KEY) is not None


def test_cli_keys_new_prints_key_once_and_hash_line() -> None:
    from vigil_shared.cli import app

    result = CliRunner().invoke(app, ["keys", "new", "--name", "embassy", "--role", "ingest"])
    assert result.exit_code == 0
    key, line = result.stdout.strip().splitlines()[-2:]
    assert line.startswith("embassy:ingest:")
    assert key not in line
    assert KeyRing(parse_entries(line)).verify(key) == ApiKey("embassy", Role.INGEST, hash_key(key))
    bad = CliRunner().invoke(app, ["keys", "new", "--name", "x", "--role", "root"])
    assert bad.exit_code == 2


# ---------------------------------------------------------------- HTTP


async def test_missing_key_is_401_with_www_authenticate(api: httpx.AsyncClient, redis: Redis) -> None:
    r = await api.post("/v1/alerts", json=ALERT)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"]
    assert await redis.xlen(streams.ALERTS_RECEIVED) == 0


async def test_unknown_key_is_401(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/alerts", json=ALERT, headers=bearer(new_key()))
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid API key"


async def test_ingest_key_posts_and_its_name_is_stamped_as_source(api: httpx.AsyncClient, redis: Redis) -> None:
    r = await api.post("/v1/alerts", json=ALERT, headers=bearer(INGEST_KEY))
    assert r.status_code == 202, r.text
    ((_, fields),) = await redis.xrange(streams.ALERTS_RECEIVED)
    body, _ = decode_entry(fields)
    event = json.loads(body)
    assert event["source_name"] == "embassy-feed"
    assert event["extra"]["claimed_source"] == "someone-else"
    assert INGEST_KEY not in body.decode()
    r = await api.post("/v1/alerts:batch", json=[ALERT], headers={"X-API-Key": INGEST_KEY})
    assert r.status_code == 202


async def test_subscriptions_need_admin_role(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/subscriptions")).status_code == 401
    r = await api.get("/v1/subscriptions", headers=bearer(INGEST_KEY))
    assert r.status_code == 403
    assert "needs role 'admin'" in r.json()["detail"]
    assert (await api.get("/v1/subscriptions", headers=bearer(ADMIN_KEY))).status_code == 200
    # admin may post alerts too
    assert (await api.post("/v1/alerts", json=ALERT, headers=bearer(ADMIN_KEY))).status_code == 202


async def test_health_and_metrics_stay_open(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/metrics")).status_code == 200


async def test_no_keys_configured_explains_what_to_do(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_AUTH_DISABLED", "false")
    monkeypatch.delenv("VIGIL_API_KEYS", raising=False)
    async with _app(redis) as client:
        r = await client.post("/v1/alerts", json=ALERT)
    assert r.status_code == 401
    assert "vigil keys new" in r.json()["detail"]


async def test_dev_switch_warns(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_AUTH_DISABLED", "true")
    with structlog.testing.capture_logs() as logs:
        async with _app(redis) as client:
            assert (await client.post("/v1/alerts", json=ALERT)).status_code == 202
    assert any("AUTHENTICATION IS DISABLED" in e["event"] for e in logs)


async def test_rate_limit_is_per_key_shared_by_replicas_and_says_retry_after(
    redis: Redis, keys_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_API_RATE_PER_S", "0.5")
    monkeypatch.setenv("VIGIL_API_BURST", "2")
    async with _app(redis) as replica_a, _app(redis) as replica_b:
        assert (await replica_a.post("/v1/alerts", json=ALERT, headers=bearer(INGEST_KEY))).status_code == 202
        assert (await replica_b.post("/v1/alerts", json=ALERT, headers=bearer(INGEST_KEY))).status_code == 202
        r = await replica_a.post("/v1/alerts", json=ALERT, headers=bearer(INGEST_KEY))
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 2
        # another key has its own bucket
        assert (await replica_b.get("/v1/subscriptions", headers=bearer(ADMIN_KEY))).status_code == 200


async def test_refusals_never_log_the_key(api: httpx.AsyncClient) -> None:
    wrong = new_key()
    with structlog.testing.capture_logs() as logs:
        await api.post("/v1/alerts", json=ALERT, headers=bearer(wrong))
        await api.get("/v1/subscriptions", headers=bearer(INGEST_KEY))
    text = json.dumps(logs, default=str)
    assert "request refused" in text
    assert wrong not in text
    assert INGEST_KEY not in text
