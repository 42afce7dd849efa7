"""Console settings (environment ``VIGIL_CONSOLE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_WORLD_ATLAS = PACKAGE_DIR.parents[1] / "node_modules" / "world-atlas" / "countries-110m.json"
"""Where ``npm ci`` in ``services/console`` (``make console-assets``) puts the outline in a checkout."""


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_CONSOLE_", extra="ignore")

    notify_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Base URL of notify's HTTP API (subscriptions CRUD and preview go through it).",
    )
    admin_key_sha256: str = Field(
        default="",
        description="Hex SHA-256 of the admin key. Empty = the console serves no data (fails closed).",
    )
    list_limit: int = Field(default=500, ge=1, le=10_000, description="Newest classified alerts listed.")
    scan_limit: int = Field(
        default=20_000, ge=100, description="Entries of vigil.notifications/deadletter scanned for a journey."
    )
    stream_block_ms: int = Field(default=2_000, ge=100, le=60_000, description="XREAD BLOCK of the live feed.")
    notify_timeout_s: float = Field(default=10.0, gt=0)
    world_atlas: Path | None = Field(
        default=None,
        description="TopoJSON world outline (npm world-atlas countries-110m.json). Default: the copy "
        "installed by `make console-assets` in services/console/node_modules.",
    )

    def world_atlas_path(self) -> Path | None:
        for candidate in (self.world_atlas, SOURCE_WORLD_ATLAS):
            if candidate is not None and candidate.is_file():
                return candidate
        return None
