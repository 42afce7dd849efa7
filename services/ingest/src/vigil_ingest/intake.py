"""From drafts to published ``AlertReceived`` events: identity, deduplication, publishing.

Every entry point of ingest (HTTP API, feed poller, ``vigil send --direct``) ends here, so an alert
gets the same id and is published at most once per revision whichever way it came in:

1. every draft is turned into its event *before* anything is registered, so a draft that cannot
   become a valid event fails the whole call and nothing is published half formed;
2. the drafts are registered, in order, in one call of one Lua script
   (:func:`vigil_ingest.dedup.register_many`; atomic across replicas: exactly one sighting of a
   given content is new);
3. the events of the new alerts and new revisions are written in **one** ``MULTI``/``EXEC``
   transaction (:func:`vigil_shared.worker.publish_events`). If that, or the registration itself,
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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from redis.asyncio import Redis
from vigil_shared import metrics, streams
from vigil_shared.events import AlertReceived, new_event_id
from vigil_shared.worker import Publication, publish_events

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
    # 1. every event is built (validated) up front: a bad draft fails the call before any side effect.
    # Its identity fields are filled in after registration (model_copy: they are ids made here).
    built = [to_alert_received(d, alert_id=_PLACEHOLDER_ID, correlation_id=new_event_id()) for d in drafts]

    # 2. register them all in one atomic script, in order (duplicates inside one call are seen as
    # such); a new revision's correlation id is remembered with it (for later duplicate answers, and
    # to recognise this call's registrations when they must be undone)
    sightings = await sightings_of(redis, drafts, [e.correlation_id for e in built])
    try:
        registrations = await register_many(redis, sightings, ttl_s=ttl_s)
        events: list[AlertReceived | None] = [
            e.model_copy(
                update={
                    "alert_id": reg.alert_id,
                    "revision": reg.revision,
                    "revision_of": reg.revision_of if reg.revision > 1 else None,
                }
            )
            if reg.should_publish
            else None
            for e, reg in zip(built, registrations, strict=True)
        ]
        del built
        publications = [Publication(stream, e) for e in events if e is not None]
        # 3. publish all of them in one transaction
        entry_ids = await publish_events(redis, publications, maxlen) if publications else []
    except Exception:
        # Not on cancellation: a cancelled EXEC may have been applied, and undoing a published
        # alert could let it be published twice; an orphaned registration only expires (TTL).
        await _undo(redis, sightings)
        raise

    results: list[IntakeResult] = []
    outcomes: Counter[tuple[str, str]] = Counter()
    entries = iter(entry_ids)
    for draft, reg, maybe_event in zip(drafts, registrations, events, strict=True):
        status = _status(reg)
        entry = _str(next(entries)) if maybe_event is not None else None
        result = IntakeResult(
            alert_id=reg.alert_id,
            revision=reg.revision,
            status=status,
            correlation_id=maybe_event.correlation_id if maybe_event is not None else reg.correlation_id,
            revision_of=reg.revision_of,
            title=draft.title,
            source_name=draft.source_name,
            entry_id=entry,
        )
        results.append(result)
        outcomes[(draft.source_kind, status)] += 1
        log.debug(  # per alert: DEBUG only (a no-op call above it, structlog's filtering logger)
            "alert " + ("published" if maybe_event is not None else "duplicate, not published"),
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
