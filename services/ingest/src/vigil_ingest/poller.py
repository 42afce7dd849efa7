"""The feed poller: a background loop that polls every configured feed when it is due.

Each tick (``VIGIL_INGEST_POLL_TICK_S``) the poller looks at every feed's state in Redis
(:func:`vigil_ingest.polling.load_state`) and polls the due ones, at most
``VIGIL_INGEST_POLL_CONCURRENCY`` at once. One poll of one feed:

1. takes a short per-feed lock in Redis (``SET NX PX``), so replicas of ingest do not poll the same
   feed at the same time, and re-reads the state under the lock (another replica may just have
   polled it: then it is not due any more);
2. does one conditional GET (:func:`vigil_ingest.polling.poll_once`, which never raises);
3. hands the drafts to :func:`vigil_ingest.intake.accept` (dedup + one publishing transaction);
4. saves the new state (ETag, Last-Modified, last success/error, backoff) — only after the drafts
   were accepted, so an alert is never lost because Redis failed between the two.

Even if the lock expired mid-poll, deduplication makes a second poll publish nothing twice. A feed
that fails backs off exponentially with jitter; other feeds keep flowing. The feeds file is
re-read when it changes (an invalid new version is logged and the previous list kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import structlog
from redis.asyncio import Redis
from vigil_shared import metrics
from vigil_shared.cancellation import raise_if_cancel_requested
from vigil_shared.netguard import guarded_client
from vigil_shared.streams import key as redis_key

from vigil_ingest.errors import InvalidInput
from vigil_ingest.intake import IntakeResult, accept
from vigil_ingest.polling import (
    USER_AGENT,
    FeedConfig,
    FeedState,
    load_feeds,
    load_state,
    poll_once,
    save_state,
    state_key,
)
from vigil_ingest.settings import FEEDS_FILE_ENV, FEEDS_INLINE_ENV, IngestSettings

log = structlog.get_logger("vigil.ingest.poller")

Outcome = Literal["ok", "not_modified", "error", "locked", "not_due", "disabled"]

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(feed_name: str) -> str:
    return redis_key("feeds", feed_name, "lock")


@dataclass(frozen=True)
class FeedPollOutcome:
    """What one attempt to poll one feed did."""

    feed: str
    outcome: Outcome
    results: tuple[IntakeResult, ...] = ()
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def published(self) -> int:
        return sum(1 for r in self.results if r.published)


class FeedPoller:
    """Polls the configured feeds into the alerts stream; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        settings: IngestSettings,
        feeds: Sequence[FeedConfig] | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.env = os.environ if env is None else env
        self._fixed = feeds is not None
        self.feeds: list[FeedConfig] = (
            list(feeds) if feeds is not None else load_feeds(settings.feeds_file, self.env)
        )
        self._mtime = self._feeds_mtime()
        self._own_client = client is None
        # SSRF guard: every connection (redirect hops included) goes to checked public addresses only,
        # unless allowlisted in VIGIL_OUTBOUND_ALLOWLIST (vigil_shared.netguard, SECURITY.md)
        self.client = client or guarded_client(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(max_connections=max(8, settings.poll_concurrency * 2)),
            follow_redirects=True,
            max_redirects=5,
        )
        self._semaphore = asyncio.Semaphore(settings.poll_concurrency)

    # ------------------------------------------------------------------ configuration

    def _feeds_path(self) -> Path | None:
        chosen = self.env.get(FEEDS_FILE_ENV) or (
            str(self.settings.feeds_file) if self.settings.feeds_file else None
        )
        return Path(chosen) if chosen else None

    def _feeds_mtime(self) -> float | None:
        path = self._feeds_path()
        if self._fixed or path is None or (self.env.get(FEEDS_INLINE_ENV) or "").strip():
            return None
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def reload_if_changed(self) -> bool:
        """Re-read the feeds file if it changed; keeps the current list if the new one is invalid."""
        mtime = self._feeds_mtime()
        if mtime is None or mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            feeds = load_feeds(self.settings.feeds_file, self.env)
        except InvalidInput as exc:
            log.error("feeds file changed but is invalid; keeping the previous feeds", error=str(exc))
            return False
        self.feeds = feeds
        log.info("feeds reloaded", feeds=[f.name for f in feeds])
        return True

    # ------------------------------------------------------------------ polling

    async def _acquire(self, feed: FeedConfig) -> str | None:
        token = secrets.token_hex(8)
        ttl_ms = int((feed.timeout_s * (2 + min(feed.max_cap_documents, 10)) + 30) * 1000)
        ok = await self.redis.set(lock_key(feed.name), token, nx=True, px=ttl_ms)
        return token if ok else None

    async def _release(self, feed: FeedConfig, token: str) -> None:
        with contextlib.suppress(Exception):
            await self.redis.eval(_RELEASE_LUA, 1, lock_key(feed.name), token)

    async def poll_feed(
        self, feed: FeedConfig, *, force: bool = False, now: datetime | None = None
    ) -> FeedPollOutcome:
        """Poll one feed if it is due (or ``force``), under its lock; never raises for a bad feed."""
        if not feed.enabled:
            return FeedPollOutcome(feed.name, "disabled")
        token = await self._acquire(feed)
        if token is None:
            return FeedPollOutcome(feed.name, "locked")
        try:
            now = now or datetime.now(UTC)
            state = await load_state(self.redis, feed)
            if not force and not state.is_due(now):
                return FeedPollOutcome(feed.name, "not_due")
            result = await poll_once(
                self.client,
                feed,
                state,
                now=now,
                backoff_base_s=self.settings.backoff_base_s,
                backoff_cap_s=self.settings.backoff_cap_s,
            )
            for warning in result.warnings:
                log.warning("feed warning", feed=feed.name, source=feed.url, warning=warning)
            if not result.ok:
                await save_state(self.redis, result.new_state)
                metrics.FEED_POLLS.labels(feed=feed.name, outcome="error").inc()
                log.warning(
                    "feed poll failed",
                    feed=feed.name,
                    source=feed.url,
                    error=result.error,
                    failures=result.new_state.consecutive_failures,
                    next_poll_at=result.new_state.next_poll_at,
                )
                return FeedPollOutcome(feed.name, "error", error=result.error, warnings=result.warnings)
            results: list[IntakeResult] = []
            if result.drafts:
                results = await accept(
                    self.redis,
                    result.drafts,
                    ttl_s=self.settings.dedup_ttl_s,
                    maxlen=self.settings.stream_maxlen,
                )
            await save_state(self.redis, result.new_state)
            outcome: Outcome = "not_modified" if result.not_modified else "ok"
            metrics.FEED_POLLS.labels(feed=feed.name, outcome=outcome).inc()
            log.info(
                "feed polled",
                feed=feed.name,
                source=feed.url,
                outcome=outcome,
                items=len(result.drafts),
                published=sum(1 for r in results if r.published),
            )
            return FeedPollOutcome(feed.name, outcome, tuple(results), warnings=result.warnings)
        except Exception as exc:  # Redis trouble while accepting/saving: the state is not advanced
            metrics.FEED_POLLS.labels(feed=feed.name, outcome="error").inc()
            log.error("feed poll could not be recorded", feed=feed.name, source=feed.url, error=repr(exc))
            return FeedPollOutcome(feed.name, "error", error=f"{type(exc).__name__}: {exc}")
        finally:
            await self._release(feed, token)

    async def _bounded(self, feed: FeedConfig, force: bool) -> FeedPollOutcome:
        async with self._semaphore:
            return await self.poll_feed(feed, force=force)

    async def run_once(self, *, force: bool = False) -> list[FeedPollOutcome]:
        """Poll every due feed (all enabled feeds with ``force``) once, concurrently."""
        feeds = [f for f in self.feeds if f.enabled]
        if not feeds:
            return []
        if not force:
            now = datetime.now(UTC)
            raw = await self.redis.mget([state_key(f.name) for f in feeds])
            due = []
            for feed, value in zip(feeds, raw, strict=True):
                try:
                    state = FeedState.from_json(value) if value is not None else None
                except ValueError:
                    state = None
                if state is None or state.url != feed.url or state.is_due(now):
                    due.append(feed)
            feeds = due
        return list(await asyncio.gather(*(self._bounded(f, force) for f in feeds)))

    async def run(self) -> None:
        """The background loop: never returns; one failing tick is logged and the next one runs."""
        log.info("feed poller started", feeds=[f.name for f in self.feeds], tick_s=self.settings.poll_tick_s)
        while True:
            try:
                self.reload_if_changed()
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("feed poller tick failed; retrying", error=repr(exc))
            raise_if_cancel_requested()  # a cancellation the tick swallowed still stops the loop
            await asyncio.sleep(self.settings.poll_tick_s)

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()


# ---------------------------------------------------------------- vigil status


async def feed_status(redis: Any) -> dict[str, Any]:
    """Per-feed state for ``vigil status`` (entry point group ``vigil.status``, name ``feeds``)."""
    try:
        feeds = load_feeds(IngestSettings().feeds_file)
        config_error = None
    except InvalidInput as exc:
        feeds, config_error = [], str(exc)
    configured = {f.name: f for f in feeds}
    names = set(configured)
    async for raw_key in redis.scan_iter(match=redis_key("feeds", "*", "state"), count=200):
        name = (raw_key.decode() if isinstance(raw_key, bytes) else raw_key).split(":")[2]
        names.add(name)
    out: list[dict[str, Any]] = []
    for name in sorted(names):
        raw = await redis.get(state_key(name))
        state = FeedState.from_json(raw) if raw is not None else None
        feed = configured.get(name)
        row: dict[str, Any] = {
            "name": name,
            "url": feed.url if feed else (state.url if state else None),
            "configured": feed is not None,
            "enabled": feed.enabled if feed else None,
            "polled": state is not None,
        }
        if state is not None:
            row.update(
                state.model_dump(
                    mode="json", exclude={"name", "url", "seen_cap_links", "etag", "last_modified"}
                )
            )
        out.append(row)
    result: dict[str, Any] = {"feeds": out}
    if config_error:
        result["config_error"] = config_error
    failing = [r["name"] for r in out if r.get("consecutive_failures")]
    if failing:
        result["failing"] = failing
    return result
