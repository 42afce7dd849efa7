"""capfeed's HTTP routes: ``GET /feeds/alerts.atom`` and ``GET /cap/{alert_id}.xml``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from vigil_shared.events import THREAT_TYPES

from vigil_capfeed.atom import build_feed, matches
from vigil_capfeed.cap import build_cap
from vigil_capfeed.settings import CapfeedSettings
from vigil_capfeed.store import AlertStore

ATOM = "application/atom+xml; charset=utf-8"
CAP = "application/cap+xml; charset=utf-8"


def _split(values: list[str] | None) -> list[str]:
    """``?country=RU&country=UA`` and ``?country=RU,UA`` both work."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def build_router(store: AlertStore, settings: CapfeedSettings) -> APIRouter:
    router = APIRouter(tags=["capfeed"])

    @router.get(
        "/feeds/alerts.atom",
        summary="Atom feed of classified alerts as CAP 1.2, newest first",
        response_class=Response,
        responses={200: {"content": {"application/atom+xml": {}}, "description": "An Atom 1.0 feed"}},
    )
    async def alerts_feed(
        request: Request,
        country: Annotated[list[str] | None, Query(description="ISO 3166-1 alpha-2 code(s), e.g. RU")] = None,
        threat_type: Annotated[list[str] | None, Query(description="Threat type(s), e.g. terrorism")] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000, description="Entries at most")] = None,
    ) -> Response:
        countries = [c.upper() for c in _split(country)]
        types = _split(threat_type)
        unknown = [t for t in types if t not in THREAT_TYPES]
        if unknown:
            raise HTTPException(
                422, f"unknown threat_type {', '.join(unknown)}; known: {', '.join(THREAT_TYPES)}"
            )
        want = limit or settings.feed_limit
        # the store is bounded (max_alerts), so filtering in the process reads a bounded amount
        candidates = await store.latest(settings.max_alerts if (countries or types) else want)
        chosen = [a for a in candidates if matches(a, countries, types)][:want]
        base = settings.public_url or str(request.base_url)
        self_url = (
            base.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        return Response(build_feed(chosen, base_url=base, self_url=self_url), media_type=ATOM)

    @router.get(
        "/cap/{alert_id}.xml",
        summary="One alert as a CAP 1.2 document (its newest revision unless ?revision=N)",
        response_class=Response,
        responses={
            200: {"content": {"application/cap+xml": {}}, "description": "A CAP 1.2 alert"},
            404: {"description": "No such alert (or revision) is stored"},
        },
    )
    async def cap_document(
        alert_id: str,
        revision: Annotated[int | None, Query(ge=1, description="A specific revision")] = None,
    ) -> Response:
        stored = await store.get(alert_id)
        if stored is None:
            raise HTTPException(
                404, f"no alert {alert_id} (it may have been dropped: only the newest are kept)"
            )
        if revision is not None and revision not in {r.alert.revision for r in stored.revisions}:
            raise HTTPException(404, f"alert {alert_id} has no stored revision {revision}")
        body = build_cap(stored, revision, sender=settings.sender, sender_name=settings.sender_name)
        return Response(body, media_type=CAP)

    return router
