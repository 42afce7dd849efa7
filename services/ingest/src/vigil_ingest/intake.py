"""From drafts to published ``AlertReceived`` events: identity, deduplication, publishing.

Every entry point of ingest (HTTP API, feed poller, ``vigil send``) ends here, so an alert gets the
same id and is published at most once per revision whichever way it came in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from vigil_shared import metrics, streams
from vigil_shared.events import new_event_id
from vigil_shared.worker import Publication, publish_events

from vigil_ingest.drafts import AlertDraft, to_alert_received

log = structlog.get_logger("vigil.ingest")


@dataclass(frozen=True)
class IntakeResult:
    alert_id: str
    revision: int
    status: str  # "new" | "revision" | "duplicate"
    correlation_id: str | None
    entry_id: str | None = None


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def fingerprint(draft: AlertDraft) -> str:
    return hashlib.sha256(f"{_norm(draft.title)}\n{_norm(draft.text)}".encode()).hexdigest()


def identity_key(draft: AlertDraft) -> str:
    if draft.source_key:
        return f"key:{draft.source_key.strip()}"
    if draft.url:
        return f"url:{draft.url.strip()}"
    return f"content:{_norm(draft.issuer or '')}:{fingerprint(draft)}"


def alert_id_for(key: str) -> str:
    return "al_" + hashlib.sha256(key.encode()).hexdigest()[:20]


async def accept(redis: Redis, drafts: Sequence[AlertDraft], *, ttl_s: int, maxlen: int) -> list[IntakeResult]:
    """Register each draft's identity atomically and publish the new ones (and new revisions)."""
    results: list[IntakeResult] = []
    publications: list[Publication] = []
    for draft in drafts:
        key = identity_key(draft)
        alert_id = alert_id_for(key)
        fp = fingerprint(draft)
        dkey = streams.key("dedup", alert_id)
        # atomically: first sight -> rev 1; same fingerprint seen -> duplicate; else next revision
        seen = await redis.hsetnx(dkey, f"fp:{fp}", 0)
        if not seen:
            results.append(IntakeResult(alert_id, 0, "duplicate", None))
            metrics.ALERTS_INGESTED.labels(source_kind=draft.source_kind, outcome="duplicate").inc()
            continue
        revision = int(await redis.hincrby(dkey, "revisions", 1))
        await redis.hset(dkey, f"fp:{fp}", revision)
        await redis.expire(dkey, ttl_s)
        correlation_id = new_event_id()
        event = to_alert_received(
            draft, alert_id=alert_id, revision=revision,
            revision_of=alert_id if revision > 1 else None, correlation_id=correlation_id,
        )
        publications.append(Publication(streams.ALERTS_RECEIVED, event))
        status = "new" if revision == 1 else "revision"
        results.append(IntakeResult(alert_id, revision, status, correlation_id))
        metrics.ALERTS_INGESTED.labels(source_kind=draft.source_kind, outcome=status).inc()
        log.info("alert accepted", alert_id=alert_id, revision=revision, correlation_id=correlation_id,
                 source=draft.source_name)
    if publications:
        await publish_events(redis, publications, maxlen)
    return results
