"""The console's data layer without a browser: views over real stream entries, the admin-key check,
and the HTTP routes in-process against a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from vigil_console import views
from vigil_console.api import build_router
from vigil_console.auth import check_key, fallback_dependency
from vigil_console.settings import ConsoleSettings
from vigil_shared import streams
from vigil_shared.envelope import encode_event
from vigil_shared.events import (
    AlertClassified,
    AlertReceived,
    Classification,
    Evidence,
    LabelScore,
    Location,
    NotificationDelivered,
    NotificationFailed,
    classified_text,
)
from vigil_shared.settings import VigilSettings

KEY = "console-unit-test-key"
KEY_HASH = hashlib.sha256(KEY.encode()).hexdigest()


def make_alert(title: str = "Bomb threat in Moscow", text: str = "Police evacuated the metro station in Moscow.",
               severity: str = "Severe", country: str = "RU") -> AlertClassified:  # fmt: skip
    full = classified_text(title, text)
    bomb = full.index("Bomb threat")
    metro = full.index("metro station")
    city = full.index("Moscow")
    received = AlertReceived(correlation_id="corr-1", producer="ingest", alert_id="al_1", source_kind="api",
                             source_name="test", title=title, text=text)  # fmt: skip
    return AlertClassified(
        correlation_id="corr-1",
        producer="classify",
        alert=received,
        classification=Classification(
            id="al_1", is_threat=True, classifier_version="t", severity=severity,  # type: ignore[arg-type]
            threat_types=(LabelScore(type="terrorism", confidence=0.9,
                                     evidence=(Evidence(text="Bomb threat", start=bomb, end=bomb + 11),)),),
            targets=(LabelScore(type="transport_hubs", confidence=0.8,
                                evidence=(Evidence(text="metro station", start=metro, end=metro + 13),)),),
            locations=(Location(name="Moscow", country_code=country, latitude=55.75, longitude=37.62,
                                evidence=(Evidence(text="Moscow", start=city, end=city + 6),
                                          Evidence(text="overlap", start=city + 2, end=city + 4),
                                          Evidence(text="out of range", start=10_000, end=10_005))),),
            countries=(country,),
        ),
    )


def test_segments_rebuild_the_exact_text_and_mark_each_kind() -> None:
    ev = make_alert()
    segs = views.segments(ev)
    assert "".join(s["text"] for s in segs) == classified_text(ev.alert.title, ev.alert.text)
    marked = {(s["kind"], s["text"]) for s in segs if s["kind"]}
    assert ("threat", "Bomb threat") in marked
    assert ("target", "metro station") in marked
    assert ("place", "Moscow") in marked
    # overlapping and out-of-range spans are dropped, never duplicated
    assert sum(1 for s in segs if s["kind"] == "place") == 1


def test_filters() -> None:
    row = views.summary("1-0", make_alert())
    assert views.AlertFilter().matches(row)
    assert views.AlertFilter(country="ru").matches(row)
    assert not views.AlertFilter(country="TR").matches(row)
    assert views.AlertFilter(threat_type="terrorism", target_type="transport_hubs").matches(row)
    assert not views.AlertFilter(threat_type="cyber").matches(row)
    assert views.AlertFilter(min_severity="Moderate").matches(row)
    assert not views.AlertFilter(min_severity="Extreme").matches(row)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert not views.AlertFilter(since_s=3600).matches(row, now=later)
    assert views.AlertFilter(since_s=3 * 3600).matches(row, now=later)


def test_feed_state_and_key_check() -> None:
    ok = views.feed_state(b'{"name": "embassy", "url": "https://x", "last_success": "2026-01-01T00:00:00Z",'
                          b' "consecutive_failures": 0, "seen_cap_links": ["a"], "etag": "x"}')  # fmt: skip
    assert ok["health"] == "ok"
    assert "seen_cap_links" not in ok
    assert views.feed_state(b'{"name": "b", "consecutive_failures": 3}')["health"] == "failing"
    assert views.feed_state(b"garbage")["name"] == "?"
    assert check_key(KEY, KEY_HASH)
    assert check_key(KEY, KEY_HASH.upper())
    assert not check_key("wrong", KEY_HASH)
    assert not check_key(KEY, "")
    assert not check_key(None, KEY_HASH)


async def _console(redis: Redis, redis_url: str, env: dict[str, str] | None = None) -> httpx.AsyncClient:
    settings = ConsoleSettings(admin_key_sha256=KEY_HASH, notify_url="http://127.0.0.1:9", stream_block_ms=200)
    vigil = VigilSettings(redis_url=redis_url, **(env or {}))  # type: ignore[arg-type]
    app = FastAPI()
    notify = httpx.AsyncClient(base_url=settings.notify_url, timeout=2)
    app.include_router(build_router(redis, redis_url, settings, vigil, notify, asyncio.Event()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


async def _xadd(redis: Redis, stream: str, event: Any) -> str:
    entry_id = await redis.xadd(stream, await encode_event(event))  # type: ignore[arg-type]
    return entry_id.decode()


@pytest.fixture(autouse=True)
def _auth_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py disables Vigil's API keys for other tests; the console's checks are tested here
    monkeypatch.setenv("VIGIL_AUTH_DISABLED", "false")
    monkeypatch.setenv("VIGIL_API_KEYS", f"unit:admin:{KEY_HASH}")
    monkeypatch.setenv("VIGIL_API_RATE_PER_S", "0")


async def test_routes_need_the_admin_key_and_the_page_does_not(redis: Redis, redis_url: str) -> None:
    async with await _console(redis, redis_url) as c:
        assert (await c.get("/console/api/alerts")).status_code == 401
        assert (await c.get("/console/api/alerts", headers={"Authorization": "Bearer nope"})).status_code == 401
        page = await c.get("/console/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await c.get("/console/static/app.js")).status_code == 200
        for bad in ("..%2Fapi.py", "%2E%2E%2F%2E%2E%2Fsettings.py", "api.py"):
            assert (await c.get(f"/console/static/{bad}")).status_code == 404


async def test_fallback_check_fails_closed_without_a_configured_hash() -> None:
    from fastapi import HTTPException, Request

    dep = fallback_dependency(ConsoleSettings(admin_key_sha256=""))
    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {KEY}".encode())]}
    with pytest.raises(HTTPException) as exc:
        await dep(Request(scope))
    assert exc.value.status_code == 503
    dep = fallback_dependency(ConsoleSettings(admin_key_sha256=KEY_HASH))
    assert await dep(Request(scope)) == KEY


async def test_list_detail_journey_stream_and_unreachable_notify(redis: Redis, redis_url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    ev = make_alert()
    entry = await _xadd(redis, streams.ALERTS_CLASSIFIED, ev)
    await redis.xadd(streams.ALERTS_CLASSIFIED, {"garbage": "x"})  # unreadable entries are skipped
    other = make_alert(title="Bomb threat: Quake", severity="Extreme", country="TR")
    await _xadd(redis, streams.ALERTS_CLASSIFIED, other)
    common = {"correlation_id": "corr-1", "producer": "notify", "alert_id": "al_1", "idempotency_key": "k"}
    await _xadd(redis, streams.NOTIFICATIONS, NotificationFailed(
        **common, subscription_id="s1", channel="mailto://x", error="timeout", permanent=False))  # fmt: skip
    await _xadd(redis, streams.NOTIFICATIONS, NotificationDelivered(
        **common, subscription_id="s1", channel="mailto://x", attempt=2, reason="matched"))  # fmt: skip
    await _xadd(redis, streams.NOTIFICATIONS, NotificationFailed(
        **common, subscription_id="s2", channel="webhook+https://h", error="410", permanent=True))  # fmt: skip
    async with await _console(redis, redis_url) as c:
        rows = (await c.get("/console/api/alerts", headers=auth)).json()["alerts"]
        assert [r["title"] for r in rows] == ["Bomb threat: Quake", "Bomb threat in Moscow"]
        only_ru = (await c.get("/console/api/alerts?country=RU", headers=auth)).json()["alerts"]
        assert [r["entry_id"] for r in only_ru] == [entry]
        detail = (await c.get(f"/console/api/alerts/{entry}", headers=auth)).json()
        assert detail["text"] == classified_text(ev.alert.title, ev.alert.text)
        by_sub = {n["subscription_id"]: n for n in detail["journey"]["notifications"]}
        assert by_sub["s1"]["outcome"] == "delivered"
        assert len(by_sub["s1"]["attempts"]) == 2
        assert by_sub["s2"]["outcome"] == "failed"
        assert (await c.get("/console/api/alerts/9-9", headers=auth)).status_code == 404
        assert (await c.get("/console/api/alerts/nope", headers=auth)).status_code == 422
        # notify down: a clear 502, not a crash
        r = await c.get("/console/api/subscriptions", headers=auth)
        assert r.status_code == 502
        assert "unreachable" in r.json()["detail"]
        health = (await c.get("/console/api/health", headers=auth)).json()
        assert {s["stream"] for s in health["streams"]} >= {streams.ALERTS_CLASSIFIED, streams.NOTIFICATIONS}
