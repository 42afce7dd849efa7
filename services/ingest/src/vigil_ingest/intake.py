"""From drafts to published ``AlertReceived`` events: identity, deduplication, publishing.

Every entry point of ingest (HTTP API, feed poller, ``vigil send --direct``) ends here, so an alert
gets the same id and is published at most once per revision whichever way it came in:

1. every draft is turned into its event *before* anything is registered, so a draft that cannot
   become a valid event fails the whole call and nothing is published half formed;
2. each draft is registered with :func:`vigil_ingest.dedup.register_draft` (atomic across
   replicas: exactly one sighting of a given content is new);
3. the events of the new alerts and new revisions are written in **one** ``MULTI``/``EXEC``
   transaction (:func:`vigil_shared.worker.publish_events`). If that fails with an error, the
   registrations are undone (:func:`vigil_ingest.dedup.unregister`) so a retry is new again rather
   than a duplicate of an alert that never reached the stream.

Each new alert or revision gets a fresh ``correlation_id``; it is remembered with the dedup state so
a duplicate answer can name the correlation id its alert was published with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from redis.asyncio import Redis
from vigil_shared import metrics, streams
from vigil_shared.events import AlertReceived, new_event_id
from vigil_shared.worker import Publication, publish_events

from vigil_ingest.dedup import DEFAULT_TTL_S, Registration, dedup_key, register_draft, unregister
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
    # 1. validate every event up front: a bad draft fails the call before any side effect
    for draft in drafts:
        to_alert_received(draft, alert_id=_PLACEHOLDER_ID, correlation_id=new_event_id())

    # 2. register (sequentially, so duplicates inside one call are seen as such)
    registrations: list[Registration] = []
    events: list[AlertReceived | None] = []
    try:
        for draft in drafts:
            reg = await register_draft(redis, draft, ttl_s=ttl_s)
            registrations.append(reg)
            if reg.should_publish:
                events.append(
                    to_alert_received(
                        draft,
                        alert_id=reg.alert_id,
                        revision=reg.revision,
                        revision_of=reg.revision_of,
                        correlation_id=new_event_id(),
                    )
                )
            else:
                events.append(None)
        publications = [Publication(stream, e) for e in events if e is not None]
        # 3. publish all of them in one transaction
        entry_ids = await publish_events(redis, publications, maxlen) if publications else []
    except Exception:
        # Not on cancellation: a cancelled EXEC may have been applied, and undoing a published
        # alert could let it be published twice; an orphaned registration only expires (TTL).
        await _undo(redis, registrations)
        raise

    # remember the correlation id of each published revision (for duplicate answers)
    published = [(r, e) for r, e in zip(registrations, events, strict=True) if e is not None]
    if published:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for reg, event in published:
                    pipe.hset(dedup_key(reg.alert_id), f"cid:{reg.revision}", event.correlation_id)
                await pipe.execute()
        except Exception as exc:  # the events are out; this is only a nicety
            log.warning("could not remember correlation ids", error=str(exc))

    known_cids: dict[int, str | None] = {}
    duplicates = [i for i, e in enumerate(events) if e is None]
    if duplicates:
        with contextlib.suppress(Exception):
            async with redis.pipeline(transaction=False) as pipe:
                for i in duplicates:
                    reg = registrations[i]
                    pipe.hget(dedup_key(reg.alert_id), f"cid:{reg.revision}")
                values = await pipe.execute()
            known_cids = {i: _str(v) for i, v in zip(duplicates, values, strict=True)}

    results: list[IntakeResult] = []
    entries = iter(entry_ids)
    for i, (draft, reg, maybe_event) in enumerate(zip(drafts, registrations, events, strict=True)):
        status = _status(reg)
        entry = _str(next(entries)) if maybe_event is not None else None
        result = IntakeResult(
            alert_id=reg.alert_id,
            revision=reg.revision,
            status=status,
            correlation_id=maybe_event.correlation_id if maybe_event is not None else known_cids.get(i),
            revision_of=reg.revision_of,
            title=draft.title,
            source_name=draft.source_name,
            entry_id=entry,
        )
        results.append(result)
        metrics.ALERTS_INGESTED.labels(source_kind=draft.source_kind, outcome=status).inc()
        log.info(
            "alert " + ("published" if maybe_event is not None else "duplicate, not published"),
            alert_id=reg.alert_id,
            revision=reg.revision,
            status=status,
            correlation_id=result.correlation_id,
            source=draft.source_name,
            source_kind=draft.source_kind,
        )
    return results


async def _undo(redis: Redis, registrations: Sequence[Registration]) -> None:
    for reg in reversed(registrations):
        try:
            await unregister(redis, reg)
        except Exception as exc:  # Redis is likely down; the TTL will eventually forget it
            log.error("could not undo a dedup registration", alert_id=reg.alert_id, error=str(exc))
