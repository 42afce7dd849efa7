"""Polling against a real local HTTP server (ETag / Last-Modified), backoff, config and state."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from vigil_ingest.dedup import register_draft
from vigil_ingest.errors import InvalidInput
from vigil_ingest.polling import (
    FeedConfig,
    FeedState,
    backoff_ceiling,
    load_feeds,
    load_state,
    next_delay,
    poll_once,
    save_state,
)

ReadFeed = Callable[[str], bytes]
NOW = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)


class _MaxRandom(random.Random):
    """Always draws the top of the jitter range, so backoff growth is visible."""

    def random(self) -> float:
        return 0.999999


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def _feed(url: str, **kwargs: Any) -> FeedConfig:
    return FeedConfig(name=kwargs.pop("name", "test-feed"), url=url, **kwargs)


async def test_first_poll_emits_second_is_not_modified(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed
) -> None:
    feed_server.set("/embassy.rss", feed_bytes("embassy-alerts.rss.xml"), "application/rss+xml")
    feed = _feed(feed_server.url("/embassy.rss"), issuer="U.S. Embassy Moscow")
    state = FeedState.initial(feed)

    first = await poll_once(client, feed, state, now=NOW)
    assert first.ok
    assert not first.not_modified
    assert next(d.title for d in first.drafts).startswith("Security Alert: Threats to Crowded Places")
    assert len(first.drafts) == 3
    assert {d.source_name for d in first.drafts} == {"test-feed"}
    assert {d.issuer for d in first.drafts} == {"U.S. Embassy Moscow"}
    assert first.new_state.etag
    assert first.new_state.last_success == NOW
    assert first.new_state.next_poll_at == NOW + timedelta(seconds=feed.interval_s)

    second = await poll_once(client, feed, first.new_state, now=NOW + timedelta(minutes=5))
    assert second.ok
    assert second.not_modified
    assert second.drafts == ()
    assert second.new_state.etag == first.new_state.etag
    assert feed_server.conditional_hits["/embassy.rss"] == 1


async def test_last_modified_only_servers_get_if_modified_since(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed
) -> None:
    feed_server.set("/advice.atom", feed_bytes("travel-advice.atom.xml"), "application/atom+xml", etag=False)
    feed = _feed(feed_server.url("/advice.atom"))
    first = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert len(first.drafts) == 2
    assert first.new_state.etag is None
    assert first.new_state.last_modified
    second = await poll_once(client, feed, first.new_state, now=NOW)
    assert second.not_modified


async def test_changed_item_is_polled_again_and_becomes_a_linked_revision(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed, dedup_redis: Redis
) -> None:
    raw = feed_bytes("embassy-alerts.rss.xml")
    feed_server.set("/embassy.rss", raw, "application/rss+xml")
    feed = _feed(feed_server.url("/embassy.rss"))
    first = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    regs = [await register_draft(dedup_redis, d) for d in first.drafts]
    assert all(r.is_new for r in regs)

    unchanged = await poll_once(client, feed, first.new_state, now=NOW)
    assert unchanged.not_modified

    feed_server.set(
        "/embassy.rss",
        raw.replace(b"An unauthorized rally is planned", b"UPDATED: An unauthorized rally is planned"),
        "application/rss+xml",
    )
    changed = await poll_once(client, feed, unchanged.new_state, now=NOW)
    assert len(changed.drafts) == 3
    again = [await register_draft(dedup_redis, d) for d in changed.drafts]
    assert [r.should_publish for r in again] == [False, False, True]
    assert again[2].revision == 2
    assert again[2].revision_of == regs[2].alert_id


async def test_cap_index_fetches_linked_cap_documents(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed, dedup_redis: Redis
) -> None:
    feed_server.set("/cap/eq.xml", feed_bytes("cap-earthquake.xml"), "application/cap+xml")
    feed_server.set("/cap/eq-update.xml", feed_bytes("cap-earthquake-update.xml"), "application/cap+xml")
    feed_server.set("/cap/broken.xml", b"<alert>not closed", "application/cap+xml")
    index = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:cap-index</id><title>CAP</title>
<updated>2024-02-06T09:30:00Z</updated>
<entry><id>urn:1</id><title>Quake</title><updated>2024-02-06T04:17:00Z</updated>
 <link type="application/cap+xml" href="{feed_server.url("/cap/eq.xml")}"/></entry>
<entry><id>urn:2</id><title>Quake update</title><updated>2024-02-06T09:30:00Z</updated>
 <link type="application/cap+xml" href="{feed_server.url("/cap/eq-update.xml")}"/></entry>
<entry><id>urn:3</id><title>Broken</title><updated>2024-02-06T09:31:00Z</updated>
 <link type="application/cap+xml" href="{feed_server.url("/cap/broken.xml")}"/></entry>
</feed>""".encode()
    feed_server.set("/cap/index.atom", index, "application/atom+xml")
    feed = _feed(feed_server.url("/cap/index.atom"), name="civil-protection")

    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.ok
    assert [d.source_kind for d in result.drafts] == ["cap", "cap"]
    assert result.drafts[0].cap is not None
    assert result.drafts[0].cap.identifier == "example.test-2024-0206-0417"
    assert len(result.warnings) == 1
    assert "broken.xml" in result.warnings[0]
    assert "not well-formed" in result.warnings[0]

    original, update = [await register_draft(dedup_redis, d) for d in result.drafts]
    assert original.is_new
    assert (update.revision, update.revision_of) == (2, original.alert_id)

    # the index changed (new entry), but already fetched CAP documents are not fetched again
    feed_server.set("/cap/index.atom", index.replace(b"<title>CAP</title>", b"<title>CAP alerts</title>"))
    hits_before = feed_server.hits["/cap/eq.xml"]
    later = await poll_once(client, feed, result.new_state, now=NOW)
    assert later.drafts == ()
    assert feed_server.hits["/cap/eq.xml"] == hits_before


async def test_server_error_backs_off_with_growing_delays(
    feed_server: Any, client: httpx.AsyncClient
) -> None:
    feed_server.set("/down", b"oops", "text/plain", status=500)
    feed = _feed(feed_server.url("/down"))
    state = FeedState.initial(feed)
    delays = []
    for _ in range(4):
        result = await poll_once(
            client, feed, state, now=NOW, rng=_MaxRandom(), backoff_base_s=10, backoff_cap_s=1000
        )
        assert result.error is not None
        assert "HTTP 500" in result.error
        assert result.drafts == ()
        state = result.new_state
        assert state.next_poll_at is not None
        delays.append((state.next_poll_at - NOW).total_seconds())
    assert state.consecutive_failures == 4
    assert state.last_error is not None
    assert state.last_status == 500
    assert delays == sorted(delays)
    assert delays[-1] > 7 * delays[0]

    feed_server.set("/down", b"<rss version='2.0'><channel><title>t</title></channel></rss>")
    recovered = await poll_once(client, feed, state, now=NOW)
    assert recovered.ok
    assert recovered.new_state.consecutive_failures == 0
    assert recovered.new_state.last_error is not None  # kept for `vigil status`


async def test_timeout_is_a_clear_error(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed
) -> None:
    feed_server.set("/slow", feed_bytes("embassy-alerts.rss.xml"), delay_s=1.5)
    feed = _feed(feed_server.url("/slow"), timeout_s=0.3)
    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.error == "timed out after 0.3s"
    assert result.new_state.consecutive_failures == 1
    again = await poll_once(client, feed, result.new_state, now=NOW, rng=_MaxRandom())
    assert again.new_state.consecutive_failures == 2


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\x00\x01garbage\xff" * 100, "application/rss+xml", "invalid feed content"),
        (b"<html><body>Maintenance</body></html>", "text/html", "expected an RSS, Atom or CAP document"),
        (b"x" * 5000, "application/xml", "exceeds the limit of 2048 bytes"),
    ],
)
async def test_garbage_and_oversize_responses_fail_cleanly(
    feed_server: Any, client: httpx.AsyncClient, body: bytes, content_type: str, message: str
) -> None:
    feed_server.set("/bad", body, content_type)
    feed = _feed(feed_server.url("/bad"), max_bytes=2048)
    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.error is not None
    assert message in result.error
    assert result.drafts == ()


async def test_hostile_feed_is_refused(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed
) -> None:
    feed_server.set("/bomb", feed_bytes("billion-laughs.xml"), "application/rss+xml")
    feed = _feed(feed_server.url("/bomb"))
    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.error is not None
    assert "refused XML" in result.error


async def test_connection_refused_is_an_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = _feed(f"http://127.0.0.1:{port}/feed")
    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.error is not None
    assert result.error.startswith("request failed: ConnectError")


def test_backoff_full_jitter() -> None:
    assert [backoff_ceiling(n, 10, 100) for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]
    rng = random.Random(7)
    for attempt in range(1, 12):
        for _ in range(50):
            assert 0.0 <= next_delay(attempt, 10, 100, rng) <= backoff_ceiling(attempt, 10, 100)
    assert backoff_ceiling(10_000, 1, 3600) == 3600  # no overflow on huge attempt counts


def test_load_feeds_from_yaml_with_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "defaults:\n  interval_s: 600\n"
        "feeds:\n"
        "  - name: us-embassy-ru\n    url: https://example-embassy.test/category/alert/feed/\n"
        "  - name: uk-advice-tr\n    url: https://advice.example.test/turkey.atom\n    kind: atom\n"
        "    interval_s: 900\n"
    )
    feeds = load_feeds(path, env={"VIGIL_FEED_US_EMBASSY_RU_ENABLED": "false"})
    assert [f.name for f in feeds] == ["us-embassy-ru", "uk-advice-tr"]
    assert feeds[0].interval_s == 600
    assert feeds[0].enabled is False
    assert (feeds[1].interval_s, feeds[1].kind) == (900, "atom")

    inline = '[{"name": "cap", "url": "https://cap.example.test/index.atom", "kind": "cap"}]'
    assert [f.name for f in load_feeds(path, env={"VIGIL_INGEST_FEEDS": inline})] == ["cap"]
    other = tmp_path / "other.yaml"
    other.write_text("- name: one\n  url: http://one.test/feed\n")
    assert [f.name for f in load_feeds(path, env={"VIGIL_INGEST_FEEDS_FILE": str(other)})] == ["one"]
    assert load_feeds(None, env={}) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [\n", "invalid YAML"),
        ("- name: a\n  url: ftp://x\n", "url"),
        ("- name: a\n  url: http://x.test\n  colour: red\n", "colour"),
        ("- {name: a, url: 'http://x.test'}\n- {name: a, url: 'http://y.test'}\n", "used twice"),
        ("just a string", "expected a list"),
    ],
)
def test_bad_feed_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        load_feeds(path, env={})


async def test_feed_state_round_trips_through_redis(dedup_redis: Redis) -> None:
    feed = _feed("https://example.test/feed")
    state = FeedState.initial(feed).model_copy(
        update={"etag": '"abc"', "last_success": NOW, "consecutive_failures": 2, "next_poll_at": NOW}
    )
    await save_state(dedup_redis, state)
    assert await dedup_redis.exists("vigil:feeds:test-feed:state")
    loaded = await load_state(dedup_redis, feed)
    assert loaded == state
    assert FeedState.from_json(state.to_json()) == state
    moved = _feed("https://example.test/new-feed")
    assert (await load_state(dedup_redis, moved)).etag is None  # URL changed: start fresh
    assert state.is_due(NOW)
    assert not state.is_due(NOW - timedelta(seconds=1))


async def test_cap_kind_accepts_a_single_cap_document(
    feed_server: Any, client: httpx.AsyncClient, feed_bytes: ReadFeed
) -> None:
    feed_server.set("/alert.xml", feed_bytes("cap-earthquake.xml"), "text/xml")
    feed = _feed(feed_server.url("/alert.xml"), kind="cap")
    result = await poll_once(client, feed, FeedState.initial(feed), now=NOW)
    assert result.ok
    (draft,) = result.drafts
    assert draft.cap is not None
    assert draft.source_name == "test-feed"
