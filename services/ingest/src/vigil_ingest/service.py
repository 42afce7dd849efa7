"""The ingest service as the runtime hosts it: HTTP API, and the feed poller when feeds are configured."""

from __future__ import annotations

import asyncio

import structlog
from vigil_shared.runtime import Background, Service, ServiceContext, ServiceParts

from vigil_ingest.api import build_router
from vigil_ingest.errors import InvalidInput
from vigil_ingest.settings import IngestSettings, feeds_configured

log = structlog.get_logger("vigil.ingest")


class ConfigurationError(RuntimeError):
    """The ingest configuration (feeds file) is invalid: the service refuses to start."""


async def build(ctx: ServiceContext) -> ServiceParts:
    parts = await _build(ctx)
    # numpy and the language model (its rows read as texts reach them) before the first request: a
    # one-off ~1 CPU-second (more on the very first start on a host, which fills the model cache)
    from vigil_ingest.language import model as language_model

    try:
        await asyncio.to_thread(language_model)
    except Exception as exc:  # the first alert needing a language guess tries again
        log.warning("language model not loaded at start-up", error=repr(exc))
    # (the runtime freezes what is alive once every service is built: out of the cyclic GC's walk)
    return parts


async def _build(ctx: ServiceContext) -> ServiceParts:
    settings = IngestSettings()
    router = build_router(ctx.redis, settings)
    if not feeds_configured(settings):
        log.info("no feeds configured (VIGIL_INGEST_FEEDS_FILE); HTTP API only")
        return ServiceParts(routers=[router])
    from vigil_ingest.poller import FeedPoller  # feedparser, lxml: only when there are feeds to poll

    try:
        poller = FeedPoller(ctx.redis, settings)
    except InvalidInput as exc:
        raise ConfigurationError(f"invalid feeds configuration: {exc}") from exc

    async def feed_poller() -> None:
        await poller.run()

    background: list[Background] = [feed_poller]
    return ServiceParts(routers=[router], background=background, on_stop=[poller.aclose])


SERVICE = Service(
    name="ingest", build=build, description="Feeds, CAP, webhooks and text in; AlertReceived out"
)
