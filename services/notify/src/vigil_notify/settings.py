"""Notify settings (environment ``VIGIL_NOTIFY_*``, or pass values directly)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_NOTIFY_", extra="ignore")

    # delivery
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    send_timeout_s: float = Field(default=15.0, gt=0)
    """Per attempt, per channel."""
    max_concurrency: int = Field(default=64, ge=1)
    """Deliveries in flight at once (over all alerts being handled)."""
    alert_concurrency: int = Field(default=16, ge=1)
    """Classified alerts handled at once by per-alert callers (the service hands each read batch
    to ``Notifier.process_many`` in one call and does not use it). Each holds Redis connections
    (dedup, throttle, ledger) besides its deliveries, so ``alert_concurrency + max_concurrency`` must stay below the
    Redis client's pool (100 connections): above it commands fail with "Too many connections" and
    the entries wait for the claim loop (``claim_idle_ms``) before they are retried."""
    claim_ttl_s: int = Field(default=120, ge=1)
    """How long a "sending" claim holds; renewed on every attempt. Must exceed one attempt + backoff
    (``send_timeout_s`` + ``backoff_max_s``, 75 s by default). It is also how long a delivery whose
    replica died between claim and send waits before another replica sends it (the alert's entry stays
    pending meanwhile and is retried by the claim loop), so keep it well below
    ``max_deliveries`` x (``VIGIL_CLAIM_IDLE_MS`` + ``in_flight_wait_s``)."""
    sent_ttl_s: int = Field(default=30 * 86400, ge=60)
    in_flight_wait_s: float = Field(default=30.0, ge=0)
    """How long a second replica waits for another replica's in-flight send of the same key."""
    in_flight_poll_s: float = Field(default=0.1, gt=0)
    # routing state
    recipients_ttl_s: int = Field(default=90 * 86400, ge=60)
    fingerprint_ttl_s: int = Field(default=7 * 86400, ge=60)
    throttle_max: int = Field(default=10, ge=1)
    """Messages per (subscription, channel) per ``throttle_window_s``; the rest go to a digest."""
    throttle_window_s: int = Field(default=3600, ge=1)
    digest_delay_s: int = Field(default=900, ge=0)
    """A digest is flushed this long after its first folded alert (by :meth:`Notifier.flush_digests`)."""
    deferred_ttl_s: int = Field(default=7 * 86400, ge=60)
    # subscriptions
    subscriptions_refresh_s: float = Field(default=1.0, ge=0)
    subscriptions_file: str | None = None
    """YAML file of subscriptions synced at start-up (GitOps); entries it no longer lists are pruned."""
    gc_freeze: bool = True
    """After building the subscription index, ``gc.freeze()`` what is alive (the subscriptions, the
    index, the imported modules; at most once a minute): full garbage collections stop traversing
    them, which cost about a third of notify's CPU with 10,000 subscriptions."""
    gc_gen1_per_full_collection: int = Field(default=100, ge=0)
    """With ``gc_freeze``: a full garbage collection at most every this many generation-1
    collections (CPython's third GC threshold, process-wide; its default 10 made every tenth one a
    full collection that only re-traversed the batch in flight). 0 keeps CPython's threshold."""
    gc_young_threshold: int = Field(default=100_000, ge=0)
    """With ``gc_freeze``: a young (generation-0) garbage collection only once this many more
    container objects were allocated than freed (CPython's first GC threshold, process-wide; its
    default 700 made one every few alerts, each traversing the read batch in flight and reclaiming
    nothing: ~25 µs per alert). 0 keeps CPython's threshold."""
    consumers: int = Field(default=2, ge=1, le=16)
    """Consumers of the group in one notify process (``<consumer name>-0``, ``-1``, ...): while one
    batch waits on Redis another is handled (stream case of ``vigil bench``: ~+10% alerts/s with 2).
    The same guarantees as that many replicas; 1 is a single consumer named ``VIGIL_CONSUMER_NAME``."""
    housekeeping_interval_s: float = Field(default=5.0, gt=0)
    """How often digests and quiet-hour deferrals are checked and released."""
    producer: str = "notify"
