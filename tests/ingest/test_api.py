"""The HTTP API against real Redis: what is answered, what lands in ``vigil.alerts.received``.

The app under test is the one the runtime serves (:func:`vigil_shared.health.build_http_app` with
ingest's router), driven in-process through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs
from vigil_ingest.api import build_router
from vigil_ingest.settings import IngestSettings
from vigil_shared.events import AlertReceived
from vigil_shared.health import build_http_app

ReadStream = Callable[[Redis], Awaitable[list[AlertReceived]]]
ReadFeed = Callable[[str], bytes]

LIMIT = 4096

MOSCOW = {
    "issuer": "Embassy of Examplia, Moscow",
    "title": "Security Alert: reported threats to crowded places in Moscow",
    "text": "<p>Location: Moscow.</p><p>Avoid large gatherings.</p><script>track()</script>",
    "url": "https://embassy.example/alerts/moscow-crowded-places?utm_source=x",
    "source": "embassy-examplia-rss",
    "priority": "high",
    "tags": ["security", "moscow"],
}


def _settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {"max_body_bytes": LIMIT, "max_batch_items": 5}
    values.update(overrides)
    return IngestSettings(**values)


def _client_for(redis: Redis, settings: IngestSettings) -> httpx.AsyncClient:
    app = build_http_app(
        title="Vigil ingest (test)", routers=[build_router(redis, settings)], redis=redis, workers=[], background=[]
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest.test")


@pytest.fixture
async def api(redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with _client_for(redis, _settings()) as client:
        yield client


# ---------------------------------------------------------------- good input


async def test_json_alert_is_published_once_with_extra_fields_kept(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    r = await api.post("/v1/alerts", json=MOSCOW)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "new"
    assert body["revision"] == 1
    assert body["alert_id"].startswith("al_")
    [event] = await stream_alerts(redis)
    assert event.alert_id == body["alert_id"]
    assert event.correlation_id == body["correlation_id"]
    assert event.source_kind == "api"
    assert event.source_name == "embassy-examplia-rss"
    assert event.issuer == "Embassy of Examplia, Moscow"
    assert "track()" not in event.text
    assert "Avoid large gatherings." in event.text
    assert event.extra["priority"] == "high"
    assert event.extra["tags"] == ["security", "moscow"]
    assert event.language == "en"


async def test_posting_twice_is_a_duplicate_and_is_not_published_again(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    first = (await api.post("/v1/alerts", json=MOSCOW)).json()
    # the same item, reached through a tracking-free URL and reformatted whitespace
    again = await api.post("/v1/alerts", json={**MOSCOW, "url": "https://embassy.example/alerts/moscow-crowded-places"})
    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"
    assert again.json()["alert_id"] == first["alert_id"]
    assert again.json()["correlation_id"] == first["correlation_id"]
    assert len(await stream_alerts(redis)) == 1


async def test_changed_body_under_the_same_url_is_a_linked_revision(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    first = (await api.post("/v1/alerts", json=MOSCOW)).json()
    changed = (await api.post("/v1/alerts", json={**MOSCOW, "text": "Update: the threat has passed."})).json()
    assert changed["status"] == "revision"
    assert changed["revision"] == 2
    assert changed["alert_id"] == first["alert_id"]
    assert changed["revision_of"] == first["alert_id"]
    assert changed["correlation_id"] != first["correlation_id"]
    events = await stream_alerts(redis)
    assert [(e.revision, e.revision_of) for e in events] == [(1, None), (2, first["alert_id"])]


async def test_json_id_with_source_gives_a_stable_identity(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    a = (await api.post("/v1/alerts", json={"id": 17, "source": "desk", "text": "Road closed."})).json()
    b = (await api.post("/v1/alerts", json={"id": "17", "source": "desk", "text": "Road reopened."})).json()
    assert (a["status"], b["status"]) == ("new", "revision")
    assert a["alert_id"] == b["alert_id"]


async def test_text_plain_alert(api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream) -> None:
    text = "Demonstration near the central station\nAvoid the area this afternoon; expect police presence."
    r = await api.post("/v1/alerts?source=ops-desk", content=text, headers={"content-type": "text/plain"})
    assert r.status_code == 202, r.text
    assert r.json()["title"] == "Demonstration near the central station"
    [event] = await stream_alerts(redis)
    assert event.source_kind == "text"
    assert event.source_name == "ops-desk"
    assert event.title == "Demonstration near the central station"
    assert event.text.startswith("Avoid the area")


async def test_cap_webhook_and_its_update_thread_onto_the_original(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream, feed_bytes: ReadFeed
) -> None:
    headers = {"content-type": "application/cap+xml"}
    first = await api.post("/v1/alerts", content=feed_bytes("cap-earthquake.xml"), headers=headers)
    assert first.status_code == 202, first.text
    update = await api.post("/v1/alerts", content=feed_bytes("cap-earthquake-update.xml"), headers=headers)
    assert update.status_code == 202, update.text
    assert update.json()["status"] == "revision"
    assert update.json()["alert_id"] == first.json()["alert_id"]
    original, revision = await stream_alerts(redis)
    assert original.source_kind == "cap"
    assert original.cap is not None
    assert revision.cap is not None
    assert (original.cap.identifier, original.cap.msg_type) == ("example.test-2024-0206-0417", "Alert")
    assert original.cap.severity == "Extreme"
    assert original.cap.urgency == "Immediate"
    assert original.cap.areas[0].area_desc.startswith("Gaziantep")
    assert revision.cap.msg_type == "Update"
    assert revision.revision_of == original.alert_id
    # posting the update again changes nothing
    again = await api.post("/v1/alerts", content=feed_bytes("cap-earthquake-update.xml"), headers=headers)
    assert again.json()["status"] == "duplicate"
    assert len(await stream_alerts(redis)) == 2


async def test_rss_webhook_goes_to_the_batch_endpoint(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream, feed_bytes: ReadFeed
) -> None:
    headers = {"content-type": "application/rss+xml"}
    single = await api.post("/v1/alerts", content=feed_bytes("embassy-alerts.rss.xml"), headers=headers)
    assert single.status_code == 422
    assert single.json()["detail"] == "the body holds 3 alerts; POST them to /v1/alerts:batch"
    batch = await api.post("/v1/alerts:batch", content=feed_bytes("embassy-alerts.rss.xml"), headers=headers)
    assert batch.status_code == 202, batch.text
    assert [r["status"] for r in batch.json()["results"]] == ["new"] * 3
    again = await api.post("/v1/alerts:batch", content=feed_bytes("embassy-alerts.rss.xml"), headers=headers)
    assert again.json()["duplicates"] == 3
    events = await stream_alerts(redis)
    assert len(events) == 3
    assert {e.source_kind for e in events} == {"rss"}


async def test_batch_with_duplicates_inside_publishes_each_alert_once(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    other = {"title": "Flooding in the port district", "text": "Roads near the port are under water."}
    r = await api.post("/v1/alerts:batch", json={"alerts": [MOSCOW, other, MOSCOW, other]})
    assert r.status_code == 202, r.text
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["new", "new", "duplicate", "duplicate"]
    assert body["results"][0]["alert_id"] == body["results"][2]["alert_id"]
    assert (body["new"], body["duplicates"]) == (2, 2)
    assert len(await stream_alerts(redis)) == 2
    # a JSON array works too, and its items are duplicates of the first batch
    r2 = await api.post("/v1/alerts:batch", json=[other])
    assert r2.json()["results"][0]["status"] == "duplicate"
    assert len(await stream_alerts(redis)) == 2


async def test_openapi_is_served(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    post = spec["paths"]["/v1/alerts"]["post"]
    assert set(post["requestBody"]["content"]) >= {"application/json", "text/plain", "application/cap+xml"}
    assert {"400", "413", "415", "422"} <= set(post["responses"])
    assert "/v1/alerts:batch" in spec["paths"]
    docs = await api.get("/docs")
    assert docs.status_code == 200


# ---------------------------------------------------------------- bad input

XXE_CAP = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

BAD_INPUTS: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    # (id, path, headers, body, status, message fragment)
    ("malformed-json", "/v1/alerts", {"content-type": "application/json"}, b'{"title": "x", "text": ',
     400, "malformed JSON: Expecting value (line 1, column 24)"),
    ("malformed-json-batch", "/v1/alerts:batch", {"content-type": "application/json"}, b"[{,]",
     400, "malformed JSON"),
    ("empty-json-text", "/v1/alerts", {"content-type": "application/json"}, b'{"title": "t", "text": "   "}',
     422, "text is empty: send the alert's text"),
    ("markup-only-text", "/v1/alerts", {"content-type": "application/json"},
     b'{"title": "t", "text": "<script>x()</script>"}', 422, "text is empty"),
    ("missing-text", "/v1/alerts", {"content-type": "application/json"}, b'{"title": "no text"}',
     422, "invalid alert: text: Field required"),
    ("naive-published", "/v1/alerts", {"content-type": "application/json"},
     b'{"text": "x y", "published": "2024-03-07T18:20:00"}', 422, "published needs a timezone offset"),
    ("not-an-object", "/v1/alerts", {"content-type": "application/json"}, b'"just a string"',
     422, "expected a JSON object with 'title' and 'text'"),
    ("array-to-single", "/v1/alerts", {"content-type": "application/json"},
     b'[{"text": "one"}, {"text": "two"}]', 422, "the body holds 2 alerts; POST them to /v1/alerts:batch"),
    ("empty-batch", "/v1/alerts:batch", {"content-type": "application/json"}, b"[]",
     422, "JSON list of alerts is empty"),
    ("bad-item-in-batch", "/v1/alerts:batch", {"content-type": "application/json"},
     b'[{"text": "fine alert"}, {"title": "no text"}]', 422, "alert 2: invalid alert: text: Field required"),
    ("empty-text-plain", "/v1/alerts", {"content-type": "text/plain"}, b"  \n\t ", 422, "input is empty"),
    ("binary-as-text", "/v1/alerts", {"content-type": "text/plain"}, b"garbage \x80\x81 not utf-8",
     422, "input is not text"),
    ("form-content-type", "/v1/alerts", {"content-type": "application/x-www-form-urlencoded"}, b"text=hello",
     415, "content type application/x-www-form-urlencoded is not supported"),
    ("image-content-type", "/v1/alerts", {"content-type": "image/png"}, b"\x89PNG....",
     415, "content type image/png is not supported; send one of application/json, text/plain"),
    ("missing-content-type", "/v1/alerts", {}, b"hello", 415, "Content-Type is missing"),
    ("unknown-xml", "/v1/alerts", {"content-type": "application/xml"}, b"<?xml version='1.0'?><invoice/>",
     415, "XML document with root <invoice> is not RSS, Atom or CAP 1.2"),
    ("malformed-xml", "/v1/alerts", {"content-type": "application/cap+xml"}, b"<alert><identifier>x</alert>",
     422, "not well-formed XML: mismatched tag: line 1, column 22"),
    ("xxe", "/v1/alerts", {"content-type": "application/cap+xml"}, XXE_CAP,
     422, "refused XML: it contains a document type declaration (DTD)"),
    ("cap-index", "/v1/alerts:batch", {"content-type": "application/rss+xml"},
     b'<?xml version="1.0"?><rss version="2.0"><channel><title>CAP</title><item><title>Quake</title>'
     b'<link>https://cap.example.test/a.xml</link><enclosure url="https://cap.example.test/a.xml" '
     b'type="application/cap+xml" length="1"/></item></channel></rss>',
     422, "this is an index of 1 CAP documents; linked documents are not fetched"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
async def test_bad_input_is_refused_with_a_clear_message_logged_and_nothing_published(
    api: httpx.AsyncClient,
    redis: Redis,
    stream_alerts: ReadStream,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
) -> None:
    with capture_logs() as logs:
        r = await api.post(path + "?source=webhook-tester", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    refused = [e for e in logs if e["event"] == "alert refused"]
    assert refused, logs
    assert refused[0]["source"] == "webhook-tester"
    assert refused[0]["status"] == status
    assert refused[0]["reason"] == r.json()["detail"]
    assert await stream_alerts(redis) == []
    assert await redis.keys("vigil:dedup:*") == []


async def test_billion_laughs_is_refused_quickly(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream, feed_bytes: ReadFeed
) -> None:
    for ctype in ("application/xml", "application/rss+xml", "text/plain"):
        started = time.monotonic()
        r = await api.post("/v1/alerts", content=feed_bytes("billion-laughs.xml"), headers={"content-type": ctype})
        assert time.monotonic() - started < 2.0
        assert r.status_code == 422, (ctype, r.text)
        assert "refused XML" in r.json()["detail"]
        assert "DTD" in r.json()["detail"]
    assert await stream_alerts(redis) == []


async def test_oversize_body_is_413_with_and_without_content_length(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    big = json.dumps({"title": "big", "text": "x" * (LIMIT + 10)}).encode()
    r = await api.post("/v1/alerts", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["detail"] == f"body of {len(big)} bytes exceeds the limit of {LIMIT} bytes"

    async def chunks() -> AsyncIterator[bytes]:  # streamed: no Content-Length header
        for _ in range(10):
            yield b"y" * 1000

    r = await api.post("/v1/alerts", content=chunks(), headers={"content-type": "text/plain"})
    assert r.status_code == 413
    assert r.json()["detail"] == f"body exceeds the limit of {LIMIT} bytes"
    assert await stream_alerts(redis) == []


async def test_oversize_limit_is_configurable(redis: Redis, stream_alerts: ReadStream, monkeypatch: Any) -> None:
    monkeypatch.setenv("VIGIL_INGEST_MAX_BODY_BYTES", "2048")
    async with _client_for(redis, IngestSettings()) as client:
        r = await client.post("/v1/alerts", content="z" * 3000, headers={"content-type": "text/plain"})
    assert r.status_code == 413
    assert "limit of 2048 bytes" in r.json()["detail"]


async def test_batch_over_the_item_limit_is_413(
    api: httpx.AsyncClient, redis: Redis, stream_alerts: ReadStream
) -> None:
    items = [{"title": f"alert {i}", "text": f"body {i}"} for i in range(6)]
    r = await api.post("/v1/alerts:batch", json=items)
    assert r.status_code == 413
    assert r.json()["detail"] == "batch of 6 alerts exceeds the limit of 5 (VIGIL_INGEST_MAX_BATCH_ITEMS)"
    assert await stream_alerts(redis) == []


async def test_redis_down_is_503_and_nothing_is_half_done() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        async with _client_for(dead, _settings()) as client:
            r = await client.post("/v1/alerts", json=MOSCOW)
        assert r.status_code == 503
        assert "nothing was published, retry" in r.json()["detail"]
    finally:
        await dead.aclose()
