"""The SSRF guard is wired into feed polling, webhooks and Apprise URLs (tests fail without it)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from vigil_ingest.poller import FeedPoller
from vigil_ingest.polling import FeedConfig
from vigil_ingest.settings import IngestSettings
from vigil_notify.channels import PermanentFailure
from vigil_notify.channels.apprise_channel import AppriseChannel
from vigil_notify.channels.base import Message
from vigil_notify.channels.webhook import WebhookChannel

from .httpserver import local_http_server

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Flooding in Lagos</title><link>https://example.org/a</link><guid>a1</guid>
<description>Roads closed.</description></item></channel></rss>"""

MSG = Message(
    title="t", text="x", markdown="x", html="<p>x</p>",
    payload={"alert_id": "a1", "revision": 1, "subscription_id": "s1", "kind": "new", "reason": "r"},
    idempotency_key="k1",
)  # fmt: skip


@pytest.fixture
def no_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_OUTBOUND_ALLOWLIST", raising=False)


async def _poll(redis: Redis, url: str) -> tuple[str, str | None]:
    feed = FeedConfig(name="f1", url=url, timeout_s=5)
    poller = FeedPoller(redis, IngestSettings(), feeds=[feed])
    try:
        outcome = await poller.poll_feed(feed, force=True)
    finally:
        await poller.aclose()
    return outcome.outcome, outcome.error


async def test_feed_poller_refuses_loopback_feed(redis: Redis, no_allowlist: None) -> None:
    with local_http_server(RSS) as (base, server):
        outcome, error = await _poll(redis, base + "/feed")
    assert outcome == "error"
    assert "refused: loopback" in (error or "")
    assert server.requests == []


async def test_feed_poller_allowlisted_feed_works(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.1")
    with local_http_server(RSS) as (base, _):
        outcome, error = await _poll(redis, base + "/feed")
    assert (outcome, error) == ("ok", None)


async def test_feed_redirect_to_metadata_is_refused(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.1")
    with local_http_server(RSS) as (base, _):
        outcome, error = await _poll(redis, base + "/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert outcome == "error"
    assert "cloud metadata" in (error or "")


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest", "http://10.0.0.5/hook", "http://[::1]/x", "http://localhost/x"],
)
async def test_webhook_to_internal_address_is_permanent_failure(target: str, no_allowlist: None) -> None:
    ch = WebhookChannel(target.replace("http://", "webhook+http://", 1) + "?secret=s3cr3t-value", timeout_s=2)
    with pytest.raises(PermanentFailure, match="refused") as info:
        await ch.send(MSG)
    await ch.aclose()
    assert "s3cr3t-value" not in str(info.value)


async def test_webhook_to_loopback_receiver_refused_without_allowlist(no_allowlist: None) -> None:
    with local_http_server() as (base, server):
        ch = WebhookChannel(f"webhook+{base}/hook?secret=s", timeout_s=2)
        with pytest.raises(PermanentFailure, match="refused: loopback"):
            await ch.send(MSG)
        await ch.aclose()
    assert server.requests == []


async def test_webhook_does_not_follow_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.1")
    with local_http_server() as (base, server):
        ch = WebhookChannel(f"webhook+{base}/redirect?to=http://169.254.169.254/&secret=s", timeout_s=2)
        with pytest.raises(PermanentFailure, match="302"):
            await ch.send(MSG)
        await ch.aclose()
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:9/hook",
        "json://169.254.169.254/latest/meta-data",
        "mailto://user:pw@127.0.0.1:2525?to=a@example.com&from=v@example.com",
        "ntfy://localhost/topic",
    ],
)
async def test_apprise_internal_destination_refused_before_apprise_connects(url: str, no_allowlist: None) -> None:
    ch = AppriseChannel(url, timeout_s=2)
    with pytest.raises(PermanentFailure, match="destination refused") as info:
        await ch.send(MSG)
    assert "pw@" not in str(info.value)


async def test_apprise_json_allowlisted_reaches_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.1")
    with local_http_server() as (base, server):
        ch = AppriseChannel(base.replace("http://", "json://") + "/hook", timeout_s=5)
        await ch.send(MSG)
    assert server.requests
    assert server.requests[0][0] == "POST"
