"""The notify service: consumes ``AlertClassified``, delivers, publishes every attempt's outcome.

A thin entrypoint over :class:`~vigil_notify.notifier.Notifier`: the stream worker hands each read
batch of classified alerts to :meth:`~vigil_notify.notifier.Notifier.process_many` (its batch handler
mode) and publishes the ``NotificationDelivered``/``NotificationFailed`` events
(and dead letters) it returns; a background loop releases digests and quiet-hour deferrals.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from redis.exceptions import RedisError
from vigil_shared import metrics, streams
from vigil_shared.cancellation import raise_if_cancel_requested
from vigil_shared.events import AlertClassified
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker, publish_events

from vigil_notify import native
from vigil_notify.api import build_router
from vigil_notify.classified import decode_classified
from vigil_notify.notifier import BatchSummary, DeliveryStillInFlight, HandleResult, Notifier, publications
from vigil_notify.settings import NotifySettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("vigil.notify")


def _publications(result: HandleResult, counts: Counter[tuple[str, str]] | None = None) -> list[Publication]:
    """The events to publish for one alert (:func:`~vigil_notify.notifier.publications`); delivery
    outcomes are counted into ``counts`` (then recorded once per batch), or recorded at once without it."""
    if counts is not None:
        return publications(result, counts)
    tally: Counter[tuple[str, str]] = Counter()
    pubs = publications(result, tally)
    _record(tally)
    return pubs


def _record(counts: Counter[tuple[str, str]]) -> None:
    """:func:`metrics.record_delivery` ``n`` times in one increment (labelled by scheme, as it does)."""
    by_label: Counter[tuple[str, str]] = Counter()
    for (channel, outcome), n in counts.items():
        by_label[(channel.split(":", 1)[0], outcome)] += n
    for (scheme, outcome), n in by_label.items():
        metrics.DELIVERIES.labels(channel=scheme, outcome=outcome).inc(n)


def _log_batch(summary: BatchSummary, counts: Counter[tuple[str, str]]) -> None:
    """One INFO line per read batch; ``counts``: the batch's delivery outcomes (as :func:`_record`)."""
    by_outcome: Counter[str] = Counter()
    for (_, outcome), n in counts.items():
        by_outcome[outcome] += n
    log.info(
        "batch routed",
        alerts=summary.alerts,
        routed=summary.routed,
        deliveries=by_outcome["delivered"],
        failed_retrying=by_outcome["failed_retrying"],
        failed_permanent=by_outcome["failed_permanent"],
        deferred=summary.deferred,
        digested=summary.digested,
        duplicates=summary.duplicates,
        skipped=summary.skipped,
        errors=summary.errors,
    )


def _debug_enabled() -> bool:
    """Whether ``log`` emits DEBUG lines (structlog's filtering loggers say so; others: assume yes)."""
    is_enabled_for = getattr(log, "is_enabled_for", None)
    return True if is_enabled_for is None else bool(is_enabled_for(logging.DEBUG))


def batch_handler(
    notifier: Notifier, redis: Redis, stream_maxlen: int
) -> Callable[[Sequence[AlertClassified]], Awaitable[list[Sequence[Publication] | BaseException]]]:
    """The stream worker's batch handler: a read batch through :meth:`Notifier.process_many`, the
    publications of each alert back, the delivery metrics recorded once per batch.

    Logging is per batch: one INFO summary line (see :func:`_log_batch`); an alert routed, a
    delivery made, a duplicate skipped are DEBUG lines at most (an INFO line per alert costs more
    CPU than routing it, at thousands a second). Warnings stay per alert, with its correlation id."""

    async def handle_batch(alerts: Sequence[AlertClassified]) -> list[Sequence[Publication] | BaseException]:
        out: list[Sequence[Publication] | BaseException] = []
        counts: Counter[tuple[str, str]] = Counter()
        summary = BatchSummary(alerts=len(alerts))
        debug = _debug_enabled()
        for alert, result in zip(alerts, await notifier.process_many(alerts), strict=True):
            if isinstance(result, DeliveryStillInFlight):
                # what the other deliveries did is published now (they are marked sent and are
                # skipped when the entry comes back); the entry itself stays pending
                log.warning(
                    "alert not finished: a delivery is still claimed elsewhere; retried later",
                    correlation_id=alert.correlation_id,
                    alert_id=alert.alert.alert_id,
                    error=str(result),
                )
                summary.add(result.result)
                pubs = _publications(result.result, counts)
                if pubs:
                    try:
                        await publish_events(redis, pubs, stream_maxlen)
                    except Exception as exc:  # the outcome records of this attempt are lost, not the alert
                        log.warning("could not publish partial outcomes", alert_id=alert.alert.alert_id, error=str(exc))
            if isinstance(result, BaseException):
                summary.errors += 1
                out.append(result)
                continue
            summary.add(result)
            if debug and (result.matches or result.events):
                log.debug(
                    "alert routed",
                    correlation_id=alert.correlation_id,
                    alert_id=alert.alert.alert_id,
                    matches=len(result.matches),
                    sent=len(result.events),
                    deferred=len(result.deferred),
                    digested=len(result.digested),
                    duplicates=len(result.duplicates),
                )
            out.append(publications(result, counts))  # _publications(result, counts), without the wrapper
        _record(counts)
        _log_batch(summary, counts)
        return out

    return handle_batch


async def housekeeping_loop(notifier: Notifier, redis: Redis, interval_s: float, maxlen: int) -> None:
    """The background loop (until cancelled): every ``interval_s``, the "sent" marks that Redis failed
    to take, then the due quiet-hour deferrals and digests, their outcomes published. A Redis error
    outside the marks ends it (the runtime restarts it, :meth:`vigil_shared.runtime.Host._supervise`)."""
    while True:
        await asyncio.sleep(interval_s)
        # the "sent" marks of deliveries made just before Redis failed, as soon as it answers
        # again (also written before the next batch's claims; here in case no batch comes)
        try:
            await notifier.deliverer.write_unmarked()
        except Exception as exc:  # kept for the next try; the digests and deferrals go on
            log.warning("could not record deliveries sent before Redis failed", error=str(exc))
        for result in (await notifier.due_deferred(), await notifier.flush_digests()):
            pubs = _publications(result)
            if pubs:
                await publish_events(redis, pubs, maxlen)
        # a cancellation that a Redis call of this tick lost, or that write_unmarked's except took as
        # a Redis error, still stops the loop (vigil_shared.cancellation)
        raise_if_cancel_requested()


async def build(ctx: ServiceContext) -> ServiceParts:
    settings = NotifySettings()
    notifier = Notifier(ctx.redis, settings=settings, owner=ctx.settings.consumer_name)
    subs_file = settings.subscriptions_file
    if subs_file:
        synced = await notifier.store.load_yaml(Path(subs_file), prune=True)
        log.info("subscriptions loaded from file", file=subs_file, result=str(synced))
    # load the set and build the index now, not at the first alert (and freeze them out of the GC's
    # way): a one-off ~1 CPU-s with 10,000 subscriptions that would otherwise delay the first batch
    try:
        index = await notifier.store.index()
        log.info("subscription index built", subscriptions=len(index), native=native.active())
    except (RedisError, OSError) as exc:  # Redis not reachable yet: the first batch builds it
        log.warning("subscription index not built at start-up; the first alert builds it", error=str(exc))

    handle_batch = batch_handler(notifier, ctx.redis, ctx.settings.stream_maxlen)

    async def housekeeping() -> None:
        await housekeeping_loop(notifier, ctx.redis, settings.housekeeping_interval_s, ctx.settings.stream_maxlen)

    # several consumers of the group in this process (VIGIL_NOTIFY_CONSUMERS): while one batch waits on
    # Redis (its dedup/throttle/claim/mark scripts run one after the other), another is matched and
    # rendered; they share the subscription index and the notifier, as replicas share Redis state
    names = [ctx.settings.consumer_name]
    if settings.consumers > 1:
        names = [f"{ctx.settings.consumer_name}-{i}" for i in range(settings.consumers)]
    workers = [
        StreamWorker(
            service="notify",
            stream=streams.ALERTS_CLASSIFIED,
            group=streams.GROUP_NOTIFY,
            model=AlertClassified,
            batch_handler=handle_batch,
            settings=ctx.settings,
            description="Matches each classified alert against subscriptions and delivers it.",
            consumer=name,
            parse=decode_classified,  # what notify reads of each alert, without the rest
        )
        for name in names
    ]
    return ServiceParts(
        workers=workers,
        routers=[build_router(notifier.store)],
        background=[housekeeping],
        on_stop=[notifier.aclose],
    )


SERVICE = Service(name="notify", build=build, description="AlertClassified in; notifications out")
