"""The feed poller (loop, service wiring, locks, status) against a local HTTP server and real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.asyncio import Redis
from typer.testing import CliRunner
from vigil_ingest.poller import FeedPoller, feed_status, lock_key
from vigil_ingest.polling import FeedConfig, load_state
from vigil_ingest.service import SERVICE, ConfigurationError
from vigil_ingest.settings import IngestSettings
from vigil_shared.events import AlertReceived
from vigil_shared.runtime import ServiceContext, make_broker
from vigil_shared.settings import VigilSettings

ReadStream = Callable[[Redis], Awaitable[list[AlertReceived]]]
ReadFeed = Callable[[str], bytes]

RSS_ITEMS, ATOM_ITEMS = 3, 2


def _settings(**kw: Any) -> IngestSettings:
    values: dict[str, Any] = {"poll_tick_s": 0.05, "backoff_base_s": 60.0}
    values.update(kw)
    return IngestSettings(**values)


def _serve_samples(server: Any, feed_bytes: ReadFeed) -> list[FeedConfig]:
    server.set("/embassy.rss", feed_bytes("embassy-alerts.rss.xml"), "application/rss+xml")
    server.set("/advice.atom", feed_bytes("travel-advice.atom.xml"), "application/atom+xml")
    server.set("/cap/quake.xml", feed_bytes("cap-earthquake.xml"), "application/cap+xml")
    return [
        FeedConfig(name="embassy", url=server.url("/embassy.rss"), interval_s=60, issuer="U.S. Embassy Example"),
        FeedConfig(name="advice", url=server.url("/advice.atom"), interval_s=60),
        FeedConfig(name="quake-cap", url=server.url("/cap/quake.xml"), kind="cap", interval_s=60),
    ]


@pytest.fixture
async def poller_factory(redis: Redis) -> AsyncIterator[Callable[..., FeedPoller]]:
    made: list[FeedPoller] = []

    def make(feeds: list[FeedConfig], client: Redis | None = None, **kw: Any) -> FeedPoller:
        poller = FeedPoller(client or redis, _settings(**kw), feeds)
        made.append(poller)
        return poller

    yield make
    for p in made:
        await p.aclose()


async def _eventually(condition: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


async def _run_loop_until(poller: FeedPoller, condition: Callable[[], Awaitable[bool]]) -> None:
    task = asyncio.create_task(poller.run())
    try:
        await _eventually(condition)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_loop_first_poll_emits_second_emits_none_changed_items_emit_linked_revisions(
    redis: Redis, stream_alerts: ReadStream, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any
) -> None:
    feeds = _serve_samples(feed_server, feed_bytes)
    poller = poller_factory(feeds)
    total = RSS_ITEMS + ATOM_ITEMS + 1

    async def all_in() -> bool:  # published, and each feed's state (ETag) saved after it
        states = [await load_state(redis, f) for f in feeds]
        return len(await stream_alerts(redis)) >= total and all(s.last_success for s in states)

    await _run_loop_until(poller, all_in)
    first = await stream_alerts(redis)
    assert len(first) == total
    assert sorted(e.source_kind for e in first) == ["atom", "atom", "cap", "rss", "rss", "rss"]
    assert {e.source_name for e in first} == {"embassy", "advice", "quake-cap"}
    assert {e.issuer for e in first if e.source_kind == "rss"} == {"U.S. Embassy Example"}
    quake = next(e for e in first if e.cap is not None)
    assert quake.cap is not None
    assert (quake.cap.msg_type, quake.cap.severity) == ("Alert", "Extreme")

    # second poll (forced, though not due): conditional GETs answered 304, nothing published
    outcomes = await poller.run_once(force=True)
    assert sorted(o.outcome for o in outcomes) == ["not_modified"] * 3
    assert all(feed_server.conditional_hits[p] == 1 for p in ("/embassy.rss", "/advice.atom", "/cap/quake.xml"))
    assert len(await stream_alerts(redis)) == total

    # not due yet: the loop does not fetch again
    hits = dict(feed_server.hits)
    assert await poller.run_once() == []
    assert feed_server.hits == hits

    # a changed RSS item and the CAP Update: linked revisions, nothing else
    rss = feed_bytes("embassy-alerts.rss.xml")
    feed_server.set(
        "/embassy.rss",
        rss.replace(b"An unauthorized rally is planned", b"UPDATED: An unauthorized rally is planned"),
        "application/rss+xml",
    )
    feed_server.set("/cap/quake.xml", feed_bytes("cap-earthquake-update.xml"), "application/cap+xml")
    outcomes = {o.feed: o for o in await poller.run_once(force=True)}
    assert outcomes["advice"].outcome == "not_modified"
    assert [r.status for r in outcomes["embassy"].results] == ["duplicate", "duplicate", "revision"]
    assert [r.status for r in outcomes["quake-cap"].results] == ["revision"]
    events = await stream_alerts(redis)
    assert len(events) == total + 2
    new_ones = events[total:]
    rally = next(e for e in new_ones if e.source_name == "embassy")
    quake_update = next(e for e in new_ones if e.source_name == "quake-cap")
    by_id = {e.alert_id: e for e in first}
    assert rally.revision == 2
    assert rally.revision_of in by_id
    assert by_id[rally.revision_of].title == rally.title
    assert quake_update.cap is not None
    assert quake_update.cap.msg_type == "Update"
    assert quake_update.revision_of == quake.alert_id


async def test_the_same_item_through_two_feeds_is_published_once(
    redis: Redis, stream_alerts: ReadStream, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any
) -> None:
    rss = feed_bytes("embassy-alerts.rss.xml")
    feed_server.set("/a.rss", rss, "application/rss+xml")
    feed_server.set("/b.rss", rss.replace(b"?p=", b"?utm_source=mirror&amp;p="), "text/xml")
    poller = poller_factory(
        [
            FeedConfig(name="mirror-a", url=feed_server.url("/a.rss")),
            FeedConfig(name="mirror-b", url=feed_server.url("/b.rss")),
        ]
    )
    outcomes = await poller.run_once()
    assert sorted(o.published for o in outcomes) == [0, RSS_ITEMS]
    assert len(await stream_alerts(redis)) == RSS_ITEMS


async def test_a_failing_feed_backs_off_and_the_others_keep_flowing(
    redis: Redis, stream_alerts: ReadStream, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any
) -> None:
    feed_server.set("/good.rss", feed_bytes("embassy-alerts.rss.xml"), "application/rss+xml")
    feed_server.set("/500", b"oops", "text/plain", status=500)
    feed_server.set("/garbage", b"\x00\x01 definitely not a feed", "application/rss+xml")
    feed_server.set("/slow", feed_bytes("travel-advice.atom.xml"), "application/atom+xml", delay_s=1.5)
    feed_server.set("/bomb", feed_bytes("billion-laughs.xml"), "application/rss+xml")
    feeds = [
        FeedConfig(name="good", url=feed_server.url("/good.rss")),
        FeedConfig(name="http500", url=feed_server.url("/500")),
        FeedConfig(name="garbage", url=feed_server.url("/garbage")),
        FeedConfig(name="slow", url=feed_server.url("/slow"), timeout_s=0.3),
        FeedConfig(name="bomb", url=feed_server.url("/bomb")),
    ]
    poller = poller_factory(feeds, poll_concurrency=5)
    outcomes = {o.feed: o for o in await poller.run_once()}
    assert outcomes["good"].outcome == "ok"
    assert outcomes["good"].published == RSS_ITEMS
    assert outcomes["http500"].error == f"HTTP 500 from {feed_server.url('/500')}"
    assert outcomes["garbage"].error is not None
    assert outcomes["garbage"].error.startswith("invalid feed content:")
    assert outcomes["slow"].error == "timed out after 0.3s"
    assert outcomes["bomb"].error is not None
    assert "refused XML" in outcomes["bomb"].error
    assert len(await stream_alerts(redis)) == RSS_ITEMS
    for feed in feeds[1:]:
        state = await load_state(redis, feed)
        assert state.consecutive_failures == 1
        assert state.last_error == outcomes[feed.name].error
        assert state.next_poll_at is not None
        assert state.last_error_at is not None
        assert state.next_poll_at >= state.last_error_at
    # failed feeds are not retried before their backoff delay
    assert {o.feed for o in await poller.run_once()} <= {f.name for f in feeds[1:]}


async def test_two_replicas_do_not_poll_the_same_feed_at_once(
    redis_url: str, stream_alerts: ReadStream, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any
) -> None:
    feeds = _serve_samples(feed_server, feed_bytes)
    for path in ("/embassy.rss", "/advice.atom", "/cap/quake.xml"):
        feed_server.routes[path].delay_s = 0.2
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        a, b = poller_factory(feeds, client=clients[0]), poller_factory(feeds, client=clients[1])
        out_a, out_b = await asyncio.gather(a.run_once(), b.run_once())
        outcomes = sorted(o.outcome for o in (*out_a, *out_b))
        assert outcomes.count("ok") == 3
        assert set(outcomes) <= {"ok", "locked", "not_due"}
        assert all(feed_server.hits[p] == 1 for p in ("/embassy.rss", "/advice.atom", "/cap/quake.xml"))
        assert len(await stream_alerts(clients[0])) == RSS_ITEMS + ATOM_ITEMS + 1
        assert await clients[0].keys("vigil:feeds:*:lock") == []
    finally:
        for c in clients:
            await c.aclose()


async def test_a_locked_feed_is_skipped(
    redis: Redis, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any
) -> None:
    [feed, *_] = _serve_samples(feed_server, feed_bytes)
    await redis.set(lock_key(feed.name), "another-replica", px=5000)
    outcome = await poller_factory([feed]).poll_feed(feed)
    assert outcome.outcome == "locked"
    assert feed_server.hits.get("/embassy.rss") is None
    assert await redis.get(lock_key(feed.name)) == b"another-replica"


# ---------------------------------------------------------------- service wiring and vigil status


def _write_feeds(tmp_path: Path, feeds: list[FeedConfig]) -> Path:
    path = tmp_path / "feeds.yaml"
    data = {
        "defaults": {"interval_s": 60, "timeout_s": 5},
        "feeds": [{"name": f.name, "url": f.url, **({"kind": f.kind} if f.kind != "auto" else {})} for f in feeds],
    }
    path.write_text(yaml.safe_dump(data))
    return path


async def test_service_polls_the_feeds_file_in_the_background(
    redis: Redis,
    redis_url: str,
    stream_alerts: ReadStream,
    feed_server: Any,
    feed_bytes: ReadFeed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeds = _serve_samples(feed_server, feed_bytes)
    monkeypatch.setenv("VIGIL_INGEST_FEEDS_FILE", str(_write_feeds(tmp_path, feeds)))
    monkeypatch.setenv("VIGIL_INGEST_POLL_TICK_S", "0.05")
    monkeypatch.setenv("VIGIL_FEED_ADVICE_ENABLED", "false")  # env overrides one feed
    ctx = ServiceContext(VigilSettings(), redis, make_broker(redis_url))
    parts = await SERVICE.build(ctx)
    assert [r.prefix for r in parts.routers] == ["/v1"]
    [loop] = parts.background
    task = asyncio.create_task(loop())
    try:

        async def published() -> bool:
            return len(await stream_alerts(redis)) >= RSS_ITEMS + 1

        await _eventually(published)
        await asyncio.sleep(0.3)  # a few more ticks: nothing more is published
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for stop in parts.on_stop:
            await stop()
    events = await stream_alerts(redis)
    assert len(events) == RSS_ITEMS + 1
    assert "advice" not in {e.source_name for e in events}
    assert feed_server.hits["/embassy.rss"] == 1

    status = await feed_status(redis)
    rows = {row["name"]: row for row in status["feeds"]}
    assert rows["embassy"]["last_success"] is not None
    assert rows["embassy"]["last_error"] is None
    assert rows["embassy"]["items_last_poll"] == RSS_ITEMS
    assert rows["advice"]["enabled"] is False
    assert rows["advice"]["polled"] is False


async def test_service_refuses_to_start_with_an_invalid_feeds_file(
    redis: Redis, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: x\n    url: ftp://nope\n")
    monkeypatch.setenv("VIGIL_INGEST_FEEDS_FILE", str(bad))
    with pytest.raises(ConfigurationError, match=r"invalid feeds configuration: .*feed x: url"):
        await SERVICE.build(ServiceContext(VigilSettings(), redis, make_broker(redis_url)))


def test_vigil_status_shows_per_feed_state(
    redis_url: str, tmp_path: Path, feed_server: Any, feed_bytes: ReadFeed
) -> None:
    from vigil_shared.cli import app as vigil_app

    feeds = _serve_samples(feed_server, feed_bytes)
    feed_server.set("/cap/quake.xml", b"", "application/cap+xml", status=503)
    feeds_file = _write_feeds(tmp_path, feeds)

    async def poll() -> None:
        client = Redis.from_url(redis_url)
        poller = FeedPoller(client, _settings(), feeds)
        try:
            await poller.run_once()
        finally:
            await poller.aclose()
            await client.aclose()

    asyncio.run(poll())
    env = {"REDIS_URL": redis_url, "VIGIL_INGEST_FEEDS_FILE": str(feeds_file)}
    result = CliRunner().invoke(vigil_app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["feeds"]["feeds"]}
    assert set(rows) == {"embassy", "advice", "quake-cap"}
    assert rows["embassy"]["last_success"] is not None
    assert rows["quake-cap"]["last_error"] == f"HTTP 503 from {feed_server.url('/cap/quake.xml')}"
    assert rows["quake-cap"]["consecutive_failures"] == 1
    assert json.loads(result.stdout)["feeds"]["failing"] == ["quake-cap"]

    text = CliRunner().invoke(vigil_app, ["status"], env=env)
    assert "feeds: " in text.stdout
    assert "HTTP 503" in text.stdout


def test_the_example_feeds_file_is_valid() -> None:
    from vigil_ingest.polling import load_feeds

    example = Path(__file__).resolve().parents[2] / "services" / "ingest" / "examples" / "feeds.yaml"
    feeds = {f.name: f for f in load_feeds(example, {})}
    assert set(feeds) == {"embassy-moscow", "travel-advice-turkey", "civil-protection-cap", "paused-feed"}
    assert feeds["civil-protection-cap"].kind == "cap"
    assert feeds["paused-feed"].enabled is False


async def test_the_loop_stops_when_a_tick_swallowed_its_cancellation(
    redis: Redis, feed_server: Any, feed_bytes: ReadFeed, poller_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation lost inside a tick (redis-py's asyncio client sometimes swallows one under load)
    must still stop the loop: the task's pending cancel request is checked after every tick."""
    poller = poller_factory(_serve_samples(feed_server, feed_bytes))
    in_tick = asyncio.Event()
    ticks = 0

    async def tick_that_swallows(*, force: bool = False) -> list[Any]:
        nonlocal ticks
        ticks += 1
        in_tick.set()
        if ticks == 1:
            with contextlib.suppress(asyncio.CancelledError):  # loses the first cancellation, as redis-py can
                await asyncio.sleep(3600)
        else:
            await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(poller, "run_once", tick_that_swallows)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(in_tick.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, "the loop went on polling after its cancellation"
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks == 1
