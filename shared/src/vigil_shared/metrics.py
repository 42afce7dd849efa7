"""Prometheus metrics every service exports on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("vigil_events_consumed_total", "Stream entries consumed", ["stream", "group"])
EVENTS_PUBLISHED = Counter("vigil_events_published_total", "Events published", ["stream"])
EVENTS_FAILED = Counter("vigil_events_failed_total", "Handler failures (entry left pending)", ["stream", "group"])
EVENTS_DEADLETTERED = Counter("vigil_events_deadlettered_total", "Entries dead-lettered", ["stream", "group"])
EVENTS_CLAIMED = Counter("vigil_events_claimed_total", "Pending entries claimed from idle consumers", ["stream", "group"])
BATCH_SECONDS = Histogram(
    "vigil_batch_seconds",
    "Time to validate, handle and hand over one batch",
    ["stream", "group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GROUP_LAG = Gauge("vigil_group_lag", "Entries not yet read by the group", ["stream", "group"])
GROUP_PENDING = Gauge("vigil_group_pending", "Entries read but not acknowledged", ["stream", "group"])
STREAM_LENGTH = Gauge("vigil_stream_length", "Entries in the stream", ["stream"])
DELIVERIES = Counter("vigil_deliveries_total", "Notification attempts", ["channel", "outcome"])
FEED_POLLS = Counter("vigil_feed_polls_total", "Feed polls", ["feed", "outcome"])
ALERTS_INGESTED = Counter("vigil_alerts_ingested_total", "Alerts accepted by ingest", ["source_kind", "outcome"])
