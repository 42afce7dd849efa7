"""The notify service: consumes ``AlertClassified``, delivers, publishes every attempt's outcome.

A thin entrypoint over :class:`~vigil_notify.notifier.Notifier`: the stream worker hands each
classified alert to it and publishes the ``NotificationDelivered``/``NotificationFailed`` events
(and dead letters) it returns; a background loop releases digests and quiet-hour deferrals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import structlog
from vigil_shared import metrics, streams
from vigil_shared.events import AlertClassified, NotificationDelivered
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker, publish_events

from vigil_notify.api import build_router
from vigil_notify.notifier import HandleResult, Notifier
from vigil_notify.settings import NotifySettings

log = structlog.get_logger("vigil.notify")


def _publications(result: HandleResult) -> list[Publication]:
    for e in result.events:
        if isinstance(e, NotificationDelivered):
            outcome = "delivered"
        else:
            outcome = "failed_permanent" if e.permanent else "failed_retrying"
        metrics.record_delivery(e.channel, outcome)
    return [
        *(Publication(streams.NOTIFICATIONS, e) for e in result.events),
        *(Publication(streams.DEADLETTER, d) for d in result.dead_letters),
    ]


async def build(ctx: ServiceContext) -> ServiceParts:
    settings = NotifySettings()
    notifier = Notifier(ctx.redis, settings=settings, owner=ctx.settings.consumer_name)
    subs_file = settings.subscriptions_file
    if subs_file:
        synced = await notifier.store.load_yaml(Path(subs_file), prune=True)
        log.info("subscriptions loaded from file", file=subs_file, result=str(synced))

    async def handle(alert: AlertClassified) -> Sequence[Publication]:
        result = await notifier.process(alert)
        if result.matches or result.events:
            log.info(
                "alert routed",
                matches=len(result.matches),
                sent=len(result.events),
                deferred=len(result.deferred),
                digested=len(result.digested),
                duplicates=len(result.duplicates),
            )
        return _publications(result)

    async def housekeeping() -> None:
        while True:
            await asyncio.sleep(settings.housekeeping_interval_s)
            for result in (await notifier.due_deferred(), await notifier.flush_digests()):
                pubs = _publications(result)
                if pubs:
                    await publish_events(ctx.redis, pubs, ctx.settings.stream_maxlen)

    worker = StreamWorker(
        service="notify",
        stream=streams.ALERTS_CLASSIFIED,
        group=streams.GROUP_NOTIFY,
        model=AlertClassified,
        handler=handle,
        settings=ctx.settings,
        concurrency=settings.alert_concurrency,
        description="Matches each classified alert against subscriptions and delivers it.",
    )
    return ServiceParts(
        workers=[worker], routers=[build_router(notifier.store)], background=[housekeeping], on_stop=[notifier.aclose]
    )


SERVICE = Service(name="notify", build=build, description="AlertClassified in; notifications out")
