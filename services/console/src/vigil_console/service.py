"""The console service: one small FastAPI router over the streams, notify's API and the page."""

from __future__ import annotations

import asyncio

import httpx
from vigil_shared.runtime import Service, ServiceContext, ServiceParts

from vigil_console.api import build_router
from vigil_console.settings import ConsoleSettings


async def build(ctx: ServiceContext) -> ServiceParts:
    settings = ConsoleSettings()
    stopping = asyncio.Event()
    notify = httpx.AsyncClient(base_url=settings.notify_url.rstrip("/"), timeout=settings.notify_timeout_s)
    router = build_router(ctx.redis, ctx.settings.redis_url, settings, ctx.settings, notify, stopping)

    async def on_stop() -> None:
        stopping.set()
        await notify.aclose()

    return ServiceParts(routers=[router], on_stop=[on_stop])


SERVICE = Service(
    name="console",
    build=build,
    description="Operator console: live alerts, map, journeys, subscriptions, pipeline health",
)
