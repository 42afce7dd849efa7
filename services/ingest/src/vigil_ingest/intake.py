"""From drafts to published ``AlertReceived`` events: identity, deduplication, publishing.

Every entry point of ingest (HTTP API, feed poller, ``vigil send --direct``) ends here, so an alert
gets the same id and is published at most once per revision whichever way it came in:

1. every draft is turned into its event *before* anything is registered, so a draft that cannot
   become a valid event fails the whole call and nothing is published half formed;
2. the drafts are registered, in order, in one call of one Lua script
   (:func:`vigil_ingest.dedup.register_many`; atomic across replicas: exactly one sighting of a
   given content is new);
3. the events of the new alerts and new revisions are written in **one** ``MULTI``/``EXEC``
   transaction (:func:`vigil_shared.worker.publish_entries`: the commands packed as the stream
   worker packs its commits, instead of redis-py's pipeline parsing a ``QUEUED`` reply and running a
   callback per command; the same commands and the same all-or-nothing). If that, or the registration itself,
   fails with an error, this call's registrations are undone
   (:func:`vigil_ingest.dedup.unregister_many`, which recognises them by their correlation ids even
   when the registration's answer was lost) so a retry is new again rather than a duplicate of an
   alert that never reached the stream.

Each new alert or revision gets a fresh ``correlation_id``; it is remembered with the dedup state
(by the registration script) so a duplicate answer can name the correlation id its alert was
published with.

Logging: one INFO line per call (``alerts accepted``: how many, new/revisions/duplicates, the
sources); the per-alert lines (``alert published`` with its ids and correlation id) are DEBUG.
"""

from __future__ import annotations

import logging
import typing
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import orjson
import structlog
from redis.asyncio import Redis
from vigil_shared import metrics, streams
from vigil_shared.envelope import encode_body, encode_data
from vigil_shared.events import SCHEMA_VERSION, AlertReceived, SourceKind, new_event_id, utcnow
from vigil_shared.worker import publish_entries

from vigil_ingest.dedup import DEFAULT_TTL_S, Registration, Sighting, register_many, sightings_of, unregister_many
from vigil_ingest.drafts import AlertDraft, to_alert_received

log = structlog.get_logger("vigil.ingest")

Status = Literal["new", "revision", "duplicate"]

_PLACEHOLDER_ID = "al_00000000000000000000"


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one draft."""

    alert_id: str
    revision: int
    status: Status
    correlation_id: str | None
    """The correlation id the alert (revision) was published with; None if unknown (expired)."""
    revision_of: str | None = None
    title: str = ""
    source_name: str = ""
    entry_id: str | None = None
    """The stream entry id the event was written as (None for duplicates)."""

    @property
    def published(self) -> bool:
        return self.status != "duplicate"

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "revision": self.revision,
            "status": self.status,
            "correlation_id": self.correlation_id,
            "revision_of": self.revision_of,
            "title": self.title,
        }


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _status(reg: Registration) -> Status:
    if reg.is_duplicate:
        return "duplicate"
    return "new" if reg.revision == 1 else "revision"


async def accept(
    redis: Redis,
    drafts: Sequence[AlertDraft],
    *,
    ttl_s: int = DEFAULT_TTL_S,
    maxlen: int = 100_000,
    stream: str = streams.ALERTS_RECEIVED,
) -> list[IntakeResult]:
    """Register each draft's identity atomically and publish the new ones (and new revisions).

    One result per draft, in order. Raises (and publishes nothing) if a draft cannot become a
    valid event; raises after undoing the registrations if the publishing transaction fails.
    """
    # 1. every event is made up front: a bad draft fails the call before any side effect. A usual draft
    # gives its event's values (_event_values: nothing to validate), any other its validated event;
    # the identity fields are filled in after registration (they are ids made here).
    cids = [new_event_id() for _ in drafts]
    built = [
        _event_values(d, cid) or to_alert_received(d, alert_id=_PLACEHOLDER_ID, correlation_id=cid)
        for d, cid in zip(drafts, cids, strict=True)
    ]

    # 2. register them all in one atomic script, in order (duplicates inside one call are seen as
    # such); a new revision's correlation id is remembered with it (for later duplicate answers, and
    # to recognise this call's registrations when they must be undone)
    sightings = await sightings_of(redis, drafts, cids)
    try:
        registrations = await register_many(redis, sightings, ttl_s=ttl_s)
        datas = [_entry_data(e, reg) for e, reg in zip(built, registrations, strict=True) if reg.should_publish]
        del built
        # 3. publish all of them in one transaction
        entry_ids = await publish_entries(redis, stream, datas, maxlen) if datas else []
    except Exception:
        # Not on cancellation: a cancelled EXEC may have been applied, and undoing a published
        # alert could let it be published twice; an orphaned registration only expires (TTL).
        await _undo(redis, sightings)
        raise

    results: list[IntakeResult] = []
    outcomes: Counter[tuple[str, str]] = Counter()
    entries = iter(entry_ids)
    per_alert_lines = _debug_enabled()
    for draft, reg, cid in zip(drafts, registrations, cids, strict=True):
        status = _status(reg)
        published = reg.should_publish
        entry = _str(next(entries)) if published else None
        result = IntakeResult(
            alert_id=reg.alert_id,
            revision=reg.revision,
            status=status,
            correlation_id=cid if published else reg.correlation_id,
            revision_of=reg.revision_of,
            title=draft.title,
            source_name=draft.source_name,
            entry_id=entry,
        )
        results.append(result)
        outcomes[(draft.source_kind, status)] += 1
        if per_alert_lines:  # per alert: DEBUG only, not even a no-op call above it
            log.debug(
                "alert " + ("published" if published else "duplicate, not published"),
                alert_id=reg.alert_id,
                revision=reg.revision,
                status=status,
                correlation_id=result.correlation_id,
                source=draft.source_name,
                source_kind=draft.source_kind,
            )
    for (kind, outcome), count in outcomes.items():
        metrics.ALERTS_INGESTED.labels(source_kind=kind, outcome=outcome).inc(count)
    _log_summary(drafts, outcomes)
    return results


_EVENT_FIELDS: Final = (
    "event_id",
    "occurred_at",
    "schema_version",
    "correlation_id",
    "producer",
    "alert_id",
    "revision",
    "revision_of",
    "source_kind",
    "source_name",
    "issuer",
    "title",
    "text",
    "url",
    "published",
    "language",
    "cap",
    "extra",
)
_WRITTEN_HERE: Final = tuple(AlertReceived.model_fields) == _EVENT_FIELDS
"""Whether ``AlertReceived`` still has exactly the fields :func:`_event_values` fills, in that order
(checked at import: another contract takes the validated path for every draft)."""
_SOURCE_KINDS: Final = frozenset(typing.get_args(SourceKind))
_PLAIN_EXTRA: Final = frozenset((str, int, bool, type(None)))
"""Types of ``extra`` values whose JSON pydantic and orjson write alike (floats, containers: the
validated path)."""


def _event_values(draft: AlertDraft, correlation_id: str) -> dict[str, Any] | None:
    """The values of ``draft``'s ``AlertReceived`` (as :func:`to_alert_received` makes it, with a
    placeholder identity), by field in the event's order, for orjson to write the event's JSON from;
    or None unless every value is of exactly the type the event's field takes and writes the same JSON
    through orjson as through pydantic (plain strings, no CAP block, an aware ``published`` with a
    whole-minute offset, ``extra`` of plain values), so validating the event could not fail.

    The draft itself was validated (``AlertDraft``: the same types as the event's fields), so building
    the event would only check again what is known; a draft made without validation (``model_copy``
    with an update) of any other type takes the validated path and fails there, before registration.
    """
    if not _WRITTEN_HERE or draft.cap is not None:
        return None
    kind, name, title, text = draft.source_kind, draft.source_name, draft.title, draft.text
    issuer, url, language, key = draft.issuer, draft.url, draft.language, draft.source_key
    published, extra = draft.published, draft.extra
    if (
        type(kind) is not str
        or kind not in _SOURCE_KINDS
        or type(name) is not str
        or type(title) is not str
        or type(text) is not str
        or (issuer is not None and type(issuer) is not str)
        or (url is not None and type(url) is not str)
        or (language is not None and type(language) is not str)
        or (key is not None and type(key) is not str)
        or type(extra) is not dict
    ):
        return None
    if published is not None:
        offset = published.utcoffset() if type(published) is datetime else None
        if offset is None or offset % _MINUTE:
            return None
    if extra and not (_PLAIN_EXTRA.issuperset(map(type, extra.values())) and all(type(k) is str for k in extra)):
        return None
    if key is not None and "source_key" not in extra:
        extra = {**extra, "source_key": key}
    return {
        "event_id": new_event_id(),
        "occurred_at": utcnow(),
        "schema_version": SCHEMA_VERSION,
        "correlation_id": correlation_id,
        "producer": "ingest",
        "alert_id": _PLACEHOLDER_ID,
        "revision": 1,
        "revision_of": None,
        "source_kind": kind,
        "source_name": name,
        "issuer": issuer,
        "title": title,
        "text": text,
        "url": url,
        "published": published,
        "language": language,
        "cap": None,
        "extra": extra,
    }


_MINUTE: Final = timedelta(minutes=1)


def _entry_data(built: dict[str, Any] | AlertReceived, reg: Registration) -> bytes:
    """The ``__data__`` value of the event of a registered draft (``built``: its :func:`_event_values`,
    or its validated event), with the identity the registration gave it: the JSON orjson writes of the
    values is ``AlertReceived.model_dump_json()``'s (tested); a value orjson refuses (a lone surrogate,
    an integer beyond 64 bits) takes the event's own encoding, and its error if it has one."""
    revision_of = reg.revision_of if reg.revision > 1 else None
    if isinstance(built, AlertReceived):
        update = {"alert_id": reg.alert_id, "revision": reg.revision, "revision_of": revision_of}
        return encode_data(built.model_copy(update=update))
    built["alert_id"] = reg.alert_id
    built["revision"] = reg.revision
    built["revision_of"] = revision_of
    try:
        body = orjson.dumps(built, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        return encode_data(AlertReceived.model_validate(built))
    return encode_body(built["correlation_id"], AlertReceived.event_type, body)


def _debug_enabled() -> bool:
    """Whether this call's DEBUG lines are logged (asked once per call: the filtering logger's
    no-op method, called with its keyword arguments for every alert, cost ~2 us an alert); a
    logger that cannot tell is asked every line, as before."""
    is_enabled_for = getattr(log.bind(), "is_enabled_for", None)
    return True if is_enabled_for is None else bool(is_enabled_for(logging.DEBUG))


_SUMMARY_SOURCES = 5
"""Source names listed in a summary line (a batch rarely has more; the rest are counted)."""


def _log_summary(drafts: Sequence[AlertDraft], outcomes: Counter[tuple[str, str]]) -> None:
    """One INFO line per call (HTTP request, batch, feed poll): the counts, not a line per alert,
    which at thousands of alerts a second would cost more than the work it reports."""
    by_status: Counter[str] = Counter()
    for (_, status), count in outcomes.items():
        by_status[status] += count
    names = sorted({d.source_name for d in drafts})
    sources = names[:_SUMMARY_SOURCES]
    if len(names) > _SUMMARY_SOURCES:
        sources.append(f"+{len(names) - _SUMMARY_SOURCES} more")
    log.info(
        "alerts accepted",
        alerts=len(drafts),
        new=by_status["new"],
        revisions=by_status["revision"],
        duplicates=by_status["duplicate"],
        published=by_status["new"] + by_status["revision"],
        sources=sources,
        source_kinds=sorted({kind for kind, _ in outcomes}),
    )


async def _undo(redis: Redis, sightings: Sequence[Sighting]) -> None:
    try:
        await unregister_many(redis, sightings)
    except Exception as exc:  # Redis is likely down; the TTL will eventually forget them
        log.error("could not undo dedup registrations", count=len(sightings), error=str(exc))
