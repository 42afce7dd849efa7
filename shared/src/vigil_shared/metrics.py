"""Prometheus metrics every service exports on ``/metrics``.

Who updates what:

=================================== ============================== ===================================
metric                              labels                         updated by
=================================== ============================== ===================================
vigil_events_consumed_total         stream, group                  StreamWorker, per entry consumed
vigil_events_published_total        stream                         publish_events (every producer)
vigil_events_failed_total           stream, group                  StreamWorker, handler raised (retried)
vigil_events_deadlettered_total     stream, group                  StreamWorker
vigil_events_claimed_total          stream, group                  StreamWorker claim loop
vigil_batch_seconds                 stream, group                  StreamWorker, one batch end to end
vigil_handler_seconds               stream, group, outcome         :func:`instrument_worker`, per event
vigil_group_lag / _pending          stream, group                  /metrics, /readyz, ``vigil status``
vigil_stream_length                 stream                         same
vigil_consume_loop_up               stream, group                  /healthz, /readyz, /metrics
vigil_deliveries_total              channel, outcome               notify (see below)
vigil_feed_polls_total              feed, outcome                  ingest's poller (:func:`record_feed_poll`)
vigil_alerts_ingested_total         source_kind, outcome           ingest
=================================== ============================== ===================================

``vigil_deliveries_total``: one increment per delivery attempt. ``channel`` is the channel *scheme*
(``console``, ``jsonl``, ``webhook``, ``apprise``, ...; never a URL: it could hold a secret and would
explode the label set); ``outcome`` is one of :data:`DELIVERY_OUTCOMES`.

``vigil_feed_polls_total``: one increment per poll of a configured feed; ``feed`` is the feed's
configured name; ``outcome`` is one of :data:`FEED_POLL_OUTCOMES`.

Counters are per process; Prometheus sums them over replicas (``sum by (stream, group) (rate(...))``).
The group gauges are read from Redis, so every replica reports the same value: aggregate with
``max by (stream, group)``, not ``sum``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("vigil_events_consumed_total", "Stream entries consumed", ["stream", "group"])
EVENTS_PUBLISHED = Counter("vigil_events_published_total", "Events published", ["stream"])
EVENTS_FAILED = Counter(
    "vigil_events_failed_total", "Handler failures (entry left pending)", ["stream", "group"]
)
EVENTS_DEADLETTERED = Counter("vigil_events_deadlettered_total", "Entries dead-lettered", ["stream", "group"])
EVENTS_CLAIMED = Counter(
    "vigil_events_claimed_total", "Pending entries claimed from idle consumers", ["stream", "group"]
)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_SECONDS = Histogram(
    "vigil_batch_seconds",
    "Time to validate, handle and hand over one batch",
    ["stream", "group"],
    buckets=_LATENCY_BUCKETS[:-1],
)
HANDLER_SECONDS = Histogram(
    "vigil_handler_seconds",
    "Time a service's handler took for one event (outcome: ok, error)",
    ["stream", "group", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
GROUP_LAG = Gauge("vigil_group_lag", "Entries not yet read by the group", ["stream", "group"])
GROUP_PENDING = Gauge("vigil_group_pending", "Entries read but not acknowledged", ["stream", "group"])
STREAM_LENGTH = Gauge("vigil_stream_length", "Entries in the stream", ["stream"])
CONSUME_LOOP_UP = Gauge(
    "vigil_consume_loop_up", "1 while this process's consume loop of the group runs", ["stream", "group"]
)
DELIVERIES = Counter("vigil_deliveries_total", "Notification delivery attempts", ["channel", "outcome"])
FEED_POLLS = Counter("vigil_feed_polls_total", "Feed polls", ["feed", "outcome"])
ALERTS_INGESTED = Counter(
    "vigil_alerts_ingested_total", "Alerts accepted by ingest", ["source_kind", "outcome"]
)

DELIVERY_OUTCOMES: Final = (
    "delivered",
    "failed_retrying",
    "failed_permanent",
    "deferred",
    "digested",
    "duplicate",
)
"""Values of ``outcome`` on ``vigil_deliveries_total`` (notify increments it)."""
FEED_POLL_OUTCOMES: Final = (
    "ok",
    "not_modified",
    "http_error",
    "timeout",
    "parse_error",
    "too_large",
    "error",
)
"""Values of ``outcome`` on ``vigil_feed_polls_total`` (ingest's poller increments it)."""


def record_delivery(channel: str, outcome: str) -> None:
    """Count one delivery attempt; ``channel`` is a scheme such as ``webhook`` (never a URL)."""
    DELIVERIES.labels(channel=channel.split(":", 1)[0], outcome=outcome).inc()


def record_feed_poll(feed: str, outcome: str) -> None:
    FEED_POLLS.labels(feed=feed, outcome=outcome).inc()


def timed_handler(
    stream: str, group: str, handler: Callable[[Any], Awaitable[Sequence[Any]]]
) -> Callable[[Any], Awaitable[Sequence[Any]]]:
    """Wrap a handler so each call is observed in ``vigil_handler_seconds``."""
    if getattr(handler, "__vigil_timed__", False):
        return handler
    ok = HANDLER_SECONDS.labels(stream=stream, group=group, outcome="ok")
    err = HANDLER_SECONDS.labels(stream=stream, group=group, outcome="error")

    async def timed(event: Any) -> Sequence[Any]:
        started = time.perf_counter()
        try:
            result = await handler(event)
        except BaseException:
            err.observe(time.perf_counter() - started)
            raise
        ok.observe(time.perf_counter() - started)
        return result

    timed.__vigil_timed__ = True  # type: ignore[attr-defined]
    timed.__wrapped__ = handler  # type: ignore[attr-defined]
    timed.__name__ = getattr(handler, "__name__", "handler")
    return timed


def instrument_worker(worker: Any) -> None:
    """Observe a StreamWorker's handler latency (idempotent). The runtime's HTTP app calls it for every
    hosted worker; the worker looks its handler up per call, so wrapping after start is safe."""
    worker.handler = timed_handler(worker.stream, worker.group, worker.handler)
