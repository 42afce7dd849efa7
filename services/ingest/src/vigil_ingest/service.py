"""The ingest service as the runtime hosts it: HTTP API (and, when configured, feed polling)."""

from __future__ import annotations

from vigil_shared.runtime import Service, ServiceContext, ServiceParts

from vigil_ingest.api import build_router
from vigil_ingest.settings import IngestSettings


async def build(ctx: ServiceContext) -> ServiceParts:
    settings = IngestSettings()
    return ServiceParts(routers=[build_router(ctx.redis, settings)])


SERVICE = Service(name="ingest", build=build, description="Feeds, CAP, webhooks and text in; AlertReceived out")
