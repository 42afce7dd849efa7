"""capfeed's own settings (environment variables prefixed ``VIGIL_CAPFEED_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CapfeedSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_CAPFEED_", env_file=".env", extra="ignore")

    sender: str = Field(
        default="vigil@localhost",
        pattern=r"^[^\s,<&]+$",
        description="CAP <sender> of every document (no spaces or commas), e.g. vigil@alerts.example.org.",
    )
    sender_name: str = Field(default="Vigil", description="CAP <senderName> when the alert names no issuer.")
    max_alerts: int = Field(
        default=1000, ge=1, le=100_000, description="Alerts kept; the oldest are dropped."
    )
    store_non_threats: bool = Field(
        default=False,
        description="Also publish alerts the classifier found no threat in "
        "(revisions of a known alert always are).",
    )
    public_url: str | None = Field(
        default=None, description="Base URL used in feed links (default: the URL the request came in on)."
    )
    feed_limit: int = Field(default=100, ge=1, le=1000, description="Default number of entries in the feed.")
