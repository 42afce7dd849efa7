"""RSS 2.0 / RSS 1.0 / Atom feeds: bytes in, drafts (and CAP document links) out.

Parsed with feedparser from bytes the caller fetched (never from a URL), after
:func:`vigil_ingest.xmlguard.ensure_safe_feed` refused any DTD or entity declaration. For each
item the richest body wins: ``content:encoded`` / Atom ``content`` over ``description`` /
``summary``. Per-item fields Vigil has no slot for (author, categories, enclosures, comments...)
are kept in ``extra``.

A feed whose items point at CAP documents (a link or enclosure of type ``application/cap+xml``,
or a ``.cap`` URL, or any XML link in a feed that declares the CAP namespace) is a *CAP index*:
those items yield no draft of their own; their links are returned in :attr:`ParsedFeed.cap_links`
for the poller to fetch and parse with :mod:`vigil_ingest.cap`.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import feedparser

from vigil_ingest.cleaning import (
    detect_language,
    normalize_inline,
    strip_tracking_params,
    to_text,
)
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput
from vigil_ingest.xmlguard import ensure_safe_feed

FeedKind = Literal["rss", "atom"]

CAP_MEDIA_TYPES: frozenset[str] = frozenset(
    {"application/cap+xml", "application/common-alerting-protocol+xml"}
)
_XML_TYPES = frozenset({"application/xml", "text/xml"})

# feedparser keys that map onto draft fields (everything else on an item goes to ``extra``)
_CONSUMED = frozenset(
    {
        "title", "title_detail", "link", "links", "summary", "summary_detail", "content", "id",
        "guidislink", "published", "published_parsed", "updated_parsed", "language",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed held: its drafts, CAP document links (CAP indexes) and skipped items."""

    kind: FeedKind
    title: str | None
    link: str | None
    drafts: tuple[AlertDraft, ...] = ()
    cap_links: tuple[str, ...] = ()
    skipped: tuple[str, ...] = field(default=())
    """One reason per item that yielded nothing (e.g. no title and no text)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, time.struct_time):
        return datetime.fromtimestamp(calendar.timegm(value), UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _datetime(entry: Any, *names: str) -> datetime | None:
    for name in names:
        parsed = entry.get(name)
        if isinstance(parsed, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, OSError, ValueError):
                continue
    return None


def _is_cap_link(link: Any, feed_is_cap_index: bool) -> bool:
    href = str(link.get("href") or "")
    media = str(link.get("type") or "").split(";")[0].strip().lower()
    if not href:
        return False
    if media in CAP_MEDIA_TYPES or href.lower().split("?")[0].endswith(".cap"):
        return True
    return feed_is_cap_index and (media in _XML_TYPES or href.lower().split("?")[0].endswith(".xml"))


def _body(entry: Any) -> tuple[str, str | None, str | None]:
    """(value, content type, language) of the richest body of ``entry``."""
    for content in entry.get("content") or ():
        value = str(content.get("value") or "")
        if value.strip():
            return value, content.get("type"), content.get("language")
    detail = entry.get("summary_detail") or {}
    return str(entry.get("summary") or ""), detail.get("type"), detail.get("language")


def _entry_extra(entry: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _CONSUMED or key.endswith("_parsed"):
            continue
        if key == "tags":
            extra["categories"] = [t.get("term") for t in value if t.get("term")]
        elif key == "updated" and entry.get("published"):
            extra["updated"] = _jsonable(entry.get("updated_parsed")) or value
        elif key != "updated":
            extra[key] = _jsonable(value)
    other_links = [
        _jsonable(link) for link in entry.get("links") or () if link.get("rel") not in (None, "alternate")
    ]
    if other_links:
        extra["links"] = other_links
    return extra


def parse_feed(
    data: bytes, *, source_name: str | None = None, default_language: str | None = None
) -> ParsedFeed:
    """Parse RSS/Atom ``data`` into drafts; :class:`InvalidInput` if it is not a usable feed."""
    safe = ensure_safe_feed(data)
    try:
        parsed = feedparser.parse(safe)
    except Exception as exc:  # feedparser is lenient, but never let its internals escape
        raise InvalidInput(f"unreadable feed: {type(exc).__name__}: {exc}") from None
    version = str(parsed.get("version") or "")
    feed = parsed.get("feed") or {}
    entries = parsed.get("entries") or []
    if not version or not (version.startswith("rss") or version.startswith("atom")):
        reason = parsed.get("bozo_exception")
        detail = f": {reason}" if reason else ""
        raise InvalidInput(f"not an RSS or Atom feed{detail}")
    kind: FeedKind = "atom" if version.startswith("atom") else "rss"
    feed_title = normalize_inline(to_text(str(feed.get("title") or ""))) or None
    feed_link = feed.get("link")
    name = source_name or feed_title or "feed"
    namespaces = {str(v) for v in (parsed.get("namespaces") or {}).values()}
    feed_is_cap_index = any("emergency:cap" in ns for ns in namespaces)
    feed_lang = feed.get("language") or default_language

    drafts: list[AlertDraft] = []
    cap_links: list[str] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        links = list(entry.get("links") or ())
        caps = [str(link["href"]) for link in links if _is_cap_link(link, feed_is_cap_index)]
        if caps:
            cap_links.extend(c for c in caps if c not in cap_links)
            continue
        title = normalize_inline(to_text(str(entry.get("title") or "")))
        raw_body, body_type, body_lang = _body(entry)
        text = to_text(raw_body, body_type) if raw_body else ""
        if not text:
            text = title
        if not text:
            skipped.append(f"item {index + 1}: no title and no text")
            continue
        link = entry.get("link")
        extra = _entry_extra(entry)
        extra["feed"] = {"title": feed_title, "link": feed_link, "format": version}
        drafts.append(
            AlertDraft(
                source_kind=kind,
                source_name=name,
                issuer=feed_title,
                title=title,
                text=text,
                url=strip_tracking_params(str(link)) if link else None,
                published=_datetime(entry, "published_parsed", "updated_parsed"),
                language=detect_language(text, body_lang or entry.get("language") or feed_lang),
                extra=extra,
                source_key=str(entry.get("id")) if entry.get("id") else None,
            )
        )
    return ParsedFeed(
        kind=kind,
        title=feed_title,
        link=str(feed_link) if feed_link else None,
        drafts=tuple(drafts),
        cap_links=tuple(cap_links),
        skipped=tuple(skipped),
    )
