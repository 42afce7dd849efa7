"""Feed polling helpers: configuration, per-feed state, backoff and one conditional poll.

The poller (owned by the service wiring) loops over :func:`load_feeds`, and for each feed due
(:attr:`FeedState.next_poll_at`) calls :func:`poll_once`, registers the drafts it returns with
:mod:`vigil_ingest.dedup`, and saves :attr:`PollResult.new_state` (:func:`save_state`). A bad
feed never raises: its error is in :attr:`PollResult.error` and its state backs off
exponentially with full jitter, while other feeds keep flowing.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vigil_shared.streams import key as redis_key

from vigil_ingest.cap import parse_cap
from vigil_ingest.detect import parse_input
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput
from vigil_ingest.settings import FEEDS_FILE_ENV as FEEDS_FILE_ENV
from vigil_ingest.settings import FEEDS_INLINE_ENV as FEEDS_INLINE_ENV

FeedKindHint = Literal["auto", "rss", "atom", "cap"]

FEED_FIELD_ENV_PREFIX = "VIGIL_FEED_"
"""``VIGIL_FEED_<NAME>_<FIELD>=value`` overrides one field of one feed (e.g. ``..._ENABLED=false``)."""

DEFAULT_BACKOFF_BASE_S = 30.0
DEFAULT_BACKOFF_CAP_S = 3600.0
MIN_RETRY_DELAY_S = 1.0
MAX_REMEMBERED_CAP_LINKS = 1000
USER_AGENT = "vigil-ingest/0.1 (+security alert aggregator)"
_TRUSTED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/cap+xml"})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/cap+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class FeedConfig(BaseModel):
    """One feed to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    url: str = Field(pattern=r"^https?://")
    interval_s: float = Field(default=300.0, ge=1.0)
    timeout_s: float = Field(default=20.0, gt=0.0)
    kind: FeedKindHint = "auto"
    enabled: bool = True
    max_bytes: int = Field(default=5_000_000, ge=1024)
    max_cap_documents: int = Field(default=50, ge=0)
    """At most this many CAP documents fetched per poll of a CAP index."""
    issuer: str | None = None
    """Overrides the issuer taken from the feed (e.g. the feed's title)."""
    language: str | None = None
    """Language of the feed's items when the feed does not say."""


class FeedState(BaseModel):
    """What the poller knows about one feed; JSON-serialisable into Redis."""

    model_config = ConfigDict(extra="ignore")

    name: str
    url: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_status: int | None = None
    consecutive_failures: int = 0
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: datetime | None = None
    items_last_poll: int = 0
    seen_cap_links: list[str] = Field(default_factory=list)

    @classmethod
    def initial(cls, feed: FeedConfig) -> FeedState:
        return cls(name=feed.name, url=feed.url)

    def is_due(self, now: datetime) -> bool:
        return self.next_poll_at is None or self.next_poll_at <= now

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> FeedState:
        return cls.model_validate_json(data)


@dataclass(frozen=True)
class PollResult:
    """The outcome of one poll: drafts to register, the feed's next state, and any error."""

    drafts: tuple[AlertDraft, ...]
    new_state: FeedState
    not_modified: bool = False
    error: str | None = None
    """Why the poll failed (no drafts then); None on success."""
    warnings: tuple[str, ...] = field(default=())
    """Problems that did not fail the poll (a linked CAP document that could not be read...)."""

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------- backoff


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The upper bound of the delay before retry ``attempt`` (1 = first retry)."""
    exponent = max(0, min(attempt - 1, 62))
    return float(min(cap, base * (2**exponent)))


def next_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**(attempt-1))]``."""
    return (rng or random).uniform(0.0, backoff_ceiling(attempt, base, cap))


# ---------------------------------------------------------------- configuration


def _env_name(feed_name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", feed_name.upper())


def _coerce_feeds(data: Any, origin: str) -> list[dict[str, Any]]:
    defaults: dict[str, Any] = {}
    if isinstance(data, dict):
        defaults = dict(data.get("defaults") or {})
        data = data.get("feeds", [])
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidInput(f"{origin}: expected a list of feeds (or a mapping with 'feeds:')")
    out: list[dict[str, Any]] = []
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise InvalidInput(f"{origin}: feed {position + 1} is not a mapping")
        out.append({**defaults, **item})
    return out


def load_feeds(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> list[FeedConfig]:
    """The feeds to poll, from a YAML file, with environment overrides.

    ``VIGIL_INGEST_FEEDS`` (inline YAML/JSON) replaces the file; ``VIGIL_INGEST_FEEDS_FILE`` replaces
    ``path``; ``VIGIL_FEED_<NAME>_<FIELD>`` overrides one field of one feed. The file is a list of
    feeds or ``{defaults: {...}, feeds: [...]}``. Raises :class:`InvalidInput` with the reason.
    """
    env = os.environ if env is None else env
    inline = env.get(FEEDS_INLINE_ENV)
    if inline and inline.strip():
        text, origin = inline, FEEDS_INLINE_ENV
    else:
        chosen = env.get(FEEDS_FILE_ENV) or (str(path) if path else None)
        if not chosen:
            return []
        try:
            text, origin = Path(chosen).read_text(encoding="utf-8"), chosen
        except OSError as exc:
            raise InvalidInput(f"cannot read feeds file {chosen}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: invalid YAML: {exc}") from None
    raw_feeds = _coerce_feeds(data, origin)
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for raw in raw_feeds:
        name = str(raw.get("name", ""))
        prefix = f"{FEED_FIELD_ENV_PREFIX}{_env_name(name)}_"
        for var, value in env.items():
            if var.startswith(prefix):
                raw[var[len(prefix) :].lower()] = value
        try:
            feed = FeedConfig.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{origin}: feed {name or '?'}: {loc}: {first['msg']}") from None
        if feed.name in seen:
            raise InvalidInput(f"{origin}: feed name {feed.name!r} is used twice")
        seen.add(feed.name)
        feeds.append(feed)
    return feeds


# ---------------------------------------------------------------- state in Redis


def state_key(feed_name: str) -> str:
    return redis_key("feeds", feed_name, "state")


async def load_state(redis: Any, feed: FeedConfig) -> FeedState:
    """The stored state of ``feed`` (a fresh one if none, or if the feed's URL changed)."""
    raw = await redis.get(state_key(feed.name))
    if raw is None:
        return FeedState.initial(feed)
    try:
        state = FeedState.from_json(raw)
    except ValidationError:
        return FeedState.initial(feed)
    return state if state.url == feed.url else FeedState.initial(feed)


async def save_state(redis: Any, state: FeedState) -> None:
    await redis.set(state_key(state.name), state.to_json())


# ---------------------------------------------------------------- polling


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: httpx.Headers


async def _fetch(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout_s: float, max_bytes: int
) -> _Response:
    async with asyncio.timeout(timeout_s):
        async with client.stream(
            "GET", url, headers=headers, timeout=timeout_s, follow_redirects=True
        ) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _TooLarge(f"response of {declared} bytes exceeds the limit of {max_bytes} bytes")
            body = bytearray()
            if response.status_code != 304:
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise _TooLarge(f"response exceeds the limit of {max_bytes} bytes")
            return _Response(response.status_code, bytes(body), response.headers)


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {timeout_s:g}s"
    if isinstance(exc, _TooLarge):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"request failed: {type(exc).__name__}: {exc}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def _with_issuer(drafts: Sequence[AlertDraft], feed: FeedConfig) -> tuple[AlertDraft, ...]:
    out = []
    for draft in drafts:
        update: dict[str, Any] = {"source_name": feed.name}
        if feed.issuer and draft.cap is None:
            update["issuer"] = feed.issuer
        if feed.language and draft.language is None:
            update["language"] = feed.language
        out.append(draft.model_copy(update=update))
    return tuple(out)


async def poll_once(
    client: httpx.AsyncClient,
    feed: FeedConfig,
    state: FeedState,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
) -> PollResult:
    """One conditional GET of ``feed``; never raises for a bad feed (see :class:`PollResult`)."""
    now = now or datetime.now(UTC)

    def failed(message: str, status: int | None = None) -> PollResult:
        failures = state.consecutive_failures + 1
        delay = max(MIN_RETRY_DELAY_S, next_delay(failures, backoff_base_s, backoff_cap_s, rng))
        new_state = state.model_copy(
            update={
                "url": feed.url,
                "last_error": message,
                "last_error_at": now,
                "last_status": status,
                "consecutive_failures": failures,
                "next_poll_at": now + timedelta(seconds=delay),
                "items_last_poll": 0,
            }
        )
        return PollResult((), new_state, error=message)

    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        response = await _fetch(client, feed.url, headers, feed.timeout_s, feed.max_bytes)
    except (TimeoutError, httpx.HTTPError, _TooLarge) as exc:
        return failed(_describe(exc, feed.timeout_s))
    except Exception as exc:  # never let one feed's odd failure stop the poller
        return failed(f"unexpected error: {_describe(exc, feed.timeout_s)}")

    success: dict[str, Any] = {
        "url": feed.url,
        "last_success": now,
        "last_status": response.status,
        "consecutive_failures": 0,
        "next_poll_at": now + timedelta(seconds=feed.interval_s),
    }
    if response.status == 304:
        success["items_last_poll"] = 0
        return PollResult((), state.model_copy(update=success), not_modified=True)
    if not 200 <= response.status < 300:
        return failed(f"HTTP {response.status} from {feed.url}", response.status)

    # Servers label feeds carelessly (text/html, text/plain...): trust only specific feed types.
    content_type = response.headers.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() not in _TRUSTED_TYPES:
        content_type = None
    try:
        # kind "cap" accepts a single CAP document or an RSS/Atom index of them: sniff it
        hint = {"rss": "application/rss+xml", "atom": "application/atom+xml"}.get(feed.kind)
        parsed = parse_input(
            response.body,
            content_type=hint or content_type,
            source_name=feed.name,
            max_bytes=feed.max_bytes,
        )
        if parsed.kind not in ("rss", "atom", "cap"):
            raise InvalidInput(f"expected an RSS, Atom or CAP document, got {parsed.kind}")
        drafts, cap_links = parsed.drafts, parsed.cap_links
    except InvalidInput as exc:
        return failed(f"invalid feed content: {exc}", response.status)

    warnings: list[str] = []
    seen_links = list(state.seen_cap_links)
    new_links = [link for link in cap_links if link not in seen_links]
    if len(new_links) > feed.max_cap_documents:
        warnings.append(
            f"CAP index lists {len(new_links)} new documents; fetching the first {feed.max_cap_documents}"
        )
        new_links = new_links[: feed.max_cap_documents]
    cap_drafts: list[AlertDraft] = []
    for link in new_links:
        try:
            document = await _fetch(client, link, {"User-Agent": USER_AGENT}, feed.timeout_s, feed.max_bytes)
            if not 200 <= document.status < 300:
                raise InvalidInput(f"HTTP {document.status}")
            cap_drafts.append(parse_cap(document.body, source_name=feed.name))
            seen_links.append(link)
        except (InvalidInput, TimeoutError, httpx.HTTPError, _TooLarge) as exc:
            reason = str(exc) if isinstance(exc, InvalidInput) else _describe(exc, feed.timeout_s)
            warnings.append(f"CAP document {link}: {reason}")
    all_drafts = _with_issuer((*drafts, *cap_drafts), feed)
    success.update(
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        items_last_poll=len(all_drafts),
        seen_cap_links=seen_links[-MAX_REMEMBERED_CAP_LINKS:],
    )
    return PollResult(all_drafts, state.model_copy(update=success), warnings=tuple(warnings))
