"""Ingest's settings (environment, prefix ``VIGIL_INGEST_``), on top of the shared ones.

The shared settings (``REDIS_URL``, ``VIGIL_HTTP_PORT``, ``VIGIL_STREAM_MAXLEN``...) keep their own
names; see :class:`vigil_shared.settings.VigilSettings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from vigil_shared.settings import VigilSettings

FEEDS_FILE_ENV = "VIGIL_INGEST_FEEDS_FILE"
"""Path of the feeds YAML file (overrides the path given to :func:`vigil_ingest.polling.load_feeds`)."""
FEEDS_INLINE_ENV = "VIGIL_INGEST_FEEDS"
"""Inline YAML/JSON feed list; replaces the file's content entirely."""


class IngestSettings(VigilSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_INGEST_", env_file=".env", extra="ignore")

    # settings ingest reads from the shared ones keep their shared names (REDIS_URL, VIGIL_STREAM_MAXLEN,
    # VIGIL_API_KEYS, VIGIL_AUTH_DISABLED, VIGIL_OUTBOUND_ALLOWLIST: aliases in VigilSettings or here)
    stream_maxlen: int = Field(
        default=1_000_000,
        ge=1000,
        validation_alias=AliasChoices("VIGIL_STREAM_MAXLEN", "VIGIL_INGEST_STREAM_MAXLEN"),
        description="Safety cap (MAXLEN ~) on vigil.alerts.received; same as the shared VIGIL_STREAM_MAXLEN.",
    )

    # HTTP API
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger request bodies get 413.")
    max_batch_items: int = Field(default=1000, ge=1, description="Larger batches get 413.")
    source_name: str = Field(default="api", description="Source name of posted alerts that do not name one.")

    # identity
    dedup_ttl_s: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="How long an alert's identity is remembered after last seen.",
    )

    # feed polling
    feeds_file: Path | None = Field(default=None, description="YAML file listing the feeds to poll.")
    poll_tick_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the poller checks which feeds are due (not the feed interval).",
    )
    poll_concurrency: int = Field(default=4, ge=1, description="Feeds polled at the same time per replica.")
    backoff_base_s: float = Field(
        default=30.0, gt=0, description="First retry delay ceiling after a failure."
    )
    backoff_cap_s: float = Field(default=3600.0, gt=0, description="Largest retry delay after failures.")


def feeds_configured(settings: IngestSettings, env: Mapping[str, str] | None = None) -> bool:
    """Whether any feed source is configured (else ingest runs without its poller)."""
    env = os.environ if env is None else env
    return bool(settings.feeds_file or env.get(FEEDS_FILE_ENV) or (env.get(FEEDS_INLINE_ENV) or "").strip())
