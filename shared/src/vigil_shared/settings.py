"""Vigil's settings: one typed place, read from the environment (and an optional ``.env``).

Every variable is prefixed ``VIGIL_`` except ``REDIS_URL``, the one setting every deployment sets.
Service-specific settings extend :class:`VigilSettings` in the service's own ``settings`` module.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_consumer_name() -> str:
    """Unique per replica: host name + pid (two replicas never share a consumer name)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class VigilSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "VIGIL_REDIS_URL"),
        description="Redis server (redis://, rediss:// for TLS, unix://).",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto = console on a terminal, JSON otherwise (containers)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    consumer_name: str = Field(default_factory=default_consumer_name)

    # consuming
    batch_size: int = Field(default=200, ge=1, le=10_000, description="Entries read per XREADGROUP.")
    block_ms: int = Field(default=500, ge=1, description="XREADGROUP BLOCK time.")
    claim_idle_ms: int = Field(
        default=30_000, ge=100, description="Pending entries idle this long are claimed from dead replicas."
    )
    claim_interval_s: float = Field(default=5.0, gt=0, description="How often the claim loop runs.")
    max_deliveries: int = Field(
        default=5, ge=1, description="An entry delivered this often without success is dead-lettered."
    )
    consumer_idle_remove_s: float = Field(
        default=3600.0, gt=0, description="Consumers without pending entries idle this long are removed."
    )
    # retention (docs/guarantees.md, "Retention")
    stream_maxlen: int = Field(
        default=1_000_000,
        ge=1000,
        description="Safety cap per stream applied on every XADD (MAXLEN ~). It trims without looking at "
        "consumer groups, so keep it far above retention_max_len: it only bites when a group lags that far.",
    )
    retention_max_len: int = Field(
        default=100_000, ge=0, description="Retention by length (entries per stream, 0 = none); lag-aware."
    )
    retention_max_age_s: float = Field(
        default=7 * 86400.0, ge=0, description="Retention by age (seconds, 0 = none); lag-aware."
    )
    retention_interval_s: float = Field(
        default=60.0, ge=0, description="How often each process runs the lag-aware trimmer (0 = never)."
    )
    # security (SECURITY.md)
    outbound_allowlist: str = Field(
        default="",
        validation_alias=AliasChoices("VIGIL_OUTBOUND_ALLOWLIST"),
        description="CIDRs, IPs or host names (*.suffix) outbound calls may reach although they are "
        "private/loopback/link-local (vigil_shared.netguard); comma or space separated.",
    )
    api_keys: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("VIGIL_API_KEYS"),
        description="API keys as name:role:sha256hex entries (vigil keys new); hashes only, never keys.",
    )
    api_keys_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VIGIL_API_KEYS_FILE"),
        description="File with one name:role:sha256hex entry per line (e.g. a Docker secret).",
    )
    auth_disabled: bool = Field(
        default=False,
        validation_alias=AliasChoices("VIGIL_AUTH_DISABLED"),
        description="Development only: no API key checks (a warning is logged).",
    )
    api_rate_per_s: float = Field(
        default=20.0, ge=0, validation_alias=AliasChoices("VIGIL_API_RATE_PER_S"),
        description="Requests per second per API key (token bucket in Redis; 0 = no limit).",
    )  # fmt: skip
    api_burst: int = Field(
        default=100, ge=1, validation_alias=AliasChoices("VIGIL_API_BURST"),
        description="Burst size of the per-key rate limit.",
    )  # fmt: skip
    # http
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8000, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=8.0, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> VigilSettings:
    return VigilSettings()
