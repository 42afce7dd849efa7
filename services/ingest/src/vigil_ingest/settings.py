"""Ingest's settings (environment, prefix ``VIGIL_INGEST_``), on top of the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigil_shared.settings import VigilSettings


class IngestSettings(VigilSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_INGEST_", env_file=".env", extra="ignore")

    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger request bodies get 413.")
    max_batch_items: int = Field(default=1000, ge=1)
    dedup_ttl_s: int = Field(default=30 * 24 * 3600, ge=60, description="How long an alert's identity is remembered.")
    feeds_file: Path | None = Field(default=None, description="YAML file listing the feeds to poll.")
    source_name: str = Field(default="api", description="Source name stamped on alerts posted without one.")
