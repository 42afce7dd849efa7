"""The capfeed service: consumes ``AlertClassified`` as its own group, serves CAP 1.2 and Atom.

It is the worked example of ``docs/adding-a-consumer.md``: a new consumer group (``capfeed``) on an
existing stream, no change to any other service, an idempotent handler, state in Redis so any
replica can serve any request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog
from prometheus_client import Counter
from vigil_shared import streams
from vigil_shared.events import AlertClassified
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker

from vigil_capfeed.api import build_router
from vigil_capfeed.settings import CapfeedSettings
from vigil_capfeed.store import AlertStore

log = structlog.get_logger("vigil.capfeed")

GROUP = "capfeed"
"""Consumer group on ``vigil.alerts.classified``: the service's name, shared by all its replicas."""

STORED = Counter("vigil_capfeed_alerts_total", "Classified alerts seen by capfeed", ["outcome"])


def make_handler(
    store: AlertStore, settings: CapfeedSettings
) -> Callable[[AlertClassified], Awaitable[Sequence[Publication]]]:
    async def handle(event: AlertClassified) -> Sequence[Publication]:
        alert = event.alert
        if (
            not event.classification.is_threat
            and not settings.store_non_threats
            and not await store.known(alert.alert_id)
        ):
            STORED.labels(outcome="skipped_not_threat").inc()
            return []
        result = await store.put(event)
        outcome = "stored" if result.created else "duplicate"
        STORED.labels(outcome=outcome).inc()
        if result.dropped:
            STORED.labels(outcome="dropped_oldest").inc(result.dropped)
        log.info(
            "alert stored for the CAP feed", revision=alert.revision, outcome=outcome, dropped=result.dropped
        )
        return []

    return handle


async def build(ctx: ServiceContext) -> ServiceParts:
    settings = CapfeedSettings()
    store = AlertStore(ctx.redis, max_alerts=settings.max_alerts)
    worker = StreamWorker(
        service="capfeed",
        stream=streams.ALERTS_CLASSIFIED,
        group=GROUP,
        model=AlertClassified,
        handler=make_handler(store, settings),
        settings=ctx.settings,
        description="Keeps classified threat alerts (bounded) for the CAP 1.2 documents and the Atom feed.",
    )
    return ServiceParts(workers=[worker], routers=[build_router(store, settings)])


SERVICE = Service(
    name="capfeed", build=build, description="AlertClassified in; CAP 1.2 documents and an Atom feed out"
)
