"""The console's HTTP routes: the page (``/console/``) and its data (``/console/api/...``).

Reads go straight to the streams (XREVRANGE/XRANGE/XREAD, never a consumer group, so the console
changes nothing in the pipeline); writes go through the existing interfaces: subscriptions through
notify's HTTP API (``VIGIL_CONSOLE_NOTIFY_URL``, the caller's ``Authorization`` header forwarded),
dead-letter replay through :mod:`vigil_shared.deadletters`. Every data route needs the admin key.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from redis.asyncio import Redis
from vigil_shared import deadletters, streams
from vigil_shared.envelope import decode_entry, text_to_fields
from vigil_shared.events import SEVERITIES, TARGET_TYPES, THREAT_TYPES, URGENCIES
from vigil_shared.status import as_dict, pipeline_status, problems

from vigil_console import views
from vigil_console.auth import admin_dependency
from vigil_console.settings import PACKAGE_DIR, ConsoleSettings

log = structlog.get_logger("vigil.console")

STATIC_DIR = PACKAGE_DIR / "static"
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+\.(js|css|svg|png|ico)$")
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_SUB_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _entry_id(value: str) -> str:
    if not _ENTRY_ID.fullmatch(value):
        raise HTTPException(422, detail="not a stream entry id (<ms>-<seq>)")
    return value


class Reader:
    """Read-only views over the streams."""

    def __init__(self, redis: Redis, settings: ConsoleSettings) -> None:
        self.redis = redis
        self.settings = settings

    async def alerts(self, limit: int, before: str | None, flt: views.AlertFilter) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        end = f"({before}" if before else "+"
        batch = max(limit, 100)
        while len(rows) < limit:
            entries = streams.entries(
                await self.redis.xrevrange(streams.ALERTS_CLASSIFIED, max=end, min="-", count=batch)
            )
            if not entries:
                break
            for raw_id, fields in entries:
                entry_id = views._s(raw_id)
                try:
                    _, ev = views.parse_classified(fields)
                except Exception:
                    continue  # not for the console to judge; classify's consumers dead-letter it
                row = views.summary(entry_id, ev)
                if flt.matches(row):
                    rows.append(row)
                    if len(rows) >= limit:
                        break
            end = f"({views._s(entries[-1][0])}"
            if len(entries) < batch:
                break
        return rows

    async def classified(self, entry_id: str) -> tuple[bytes, Any]:
        entries = streams.entries(await self.redis.xrange(streams.ALERTS_CLASSIFIED, min=entry_id, max=entry_id))
        if not entries:
            raise HTTPException(404, detail=f"no classified alert {entry_id}")
        try:
            return views.parse_classified(entries[0][1])
        except Exception as exc:
            raise HTTPException(422, detail=f"entry {entry_id} is not a readable AlertClassified") from exc

    async def notifications_for(self, alert_id: str, revision: int, not_before: str) -> list[dict[str, Any]]:
        """Every notification event for this alert revision, newest ``scan_limit`` entries searched."""
        out: list[dict[str, Any]] = []
        ms = int(not_before.split("-", 1)[0])
        entries = streams.entries(
            await self.redis.xrevrange(
                streams.NOTIFICATIONS, max="+", min=f"{max(0, ms - 60_000)}-0", count=self.settings.scan_limit
            )
        )
        for raw_id, fields in entries:
            rec = views.notification_record(views._s(raw_id), fields)
            if rec and rec["alert_id"] == alert_id and int(rec["revision"] or 1) == revision:
                out.append(rec)
        return out

    async def dead_letters_for(self, correlation_id: str) -> list[dict[str, Any]]:
        out = []
        for raw_id, fields in streams.entries(await self.redis.xrevrange(streams.DEADLETTER, count=1000)):
            try:
                doc = orjson.loads(decode_entry(fields)[0])
            except Exception:
                continue
            if isinstance(doc, dict) and doc.get("correlation_id") == correlation_id:
                out.append({"id": views._s(raw_id), "service": doc.get("service"), "stream": doc.get("stream"),
                            "error": doc.get("error"), "time": doc.get("occurred_at")})  # fmt: skip
        return out

    async def feeds(self) -> list[dict[str, Any]]:
        out = []
        async for key in self.redis.scan_iter(match=streams.key("feeds", "*", "state"), count=500):
            raw = await self.redis.get(key)
            if raw is not None:
                out.append(views.feed_state(raw))
        return sorted(out, key=lambda f: str(f.get("name")))


def _dead_letter_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A dead-letter record plus its original entry's body decoded for reading (when possible)."""
    rec = dict(rec)
    fields = rec.get("fields") or {}
    try:
        body, headers = decode_entry(text_to_fields(fields))
        try:
            rec["body"] = orjson.loads(body)
        except Exception:
            rec["body"] = body.decode("utf-8", "replace")
        rec["headers"] = headers
    except Exception as exc:
        rec["body"] = None
        rec["body_error"] = str(exc)
    return rec


def build_router(
    redis: Redis,
    redis_url: str,
    settings: ConsoleSettings,
    vigil_settings: Any,
    notify: httpx.AsyncClient,
    stopping: asyncio.Event,
) -> APIRouter:
    """``notify``: a client whose base URL is notify's API; ``stopping`` ends live streams on shutdown."""
    reader = Reader(redis, settings)
    page = APIRouter(include_in_schema=False)

    # ------------------------------------------------------------------ the page

    @page.get("/console")
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @page.get("/console/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)

    @page.get("/console/static/{name}")
    async def static(name: str) -> FileResponse:
        path = STATIC_DIR / name
        if not _STATIC_NAME.fullmatch(name) or not path.is_file():
            raise HTTPException(404, detail="not found")
        return FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    @page.get("/console/world.json")
    async def world() -> Response:
        """Natural Earth 1:110m country outlines (public domain), from the npm package world-atlas."""
        path = settings.world_atlas_path()
        if path is None:
            raise HTTPException(404, detail="world outline not installed (run `make console-assets`)")
        return FileResponse(path, media_type="application/json", headers={"Cache-Control": "max-age=86400"})

    # ------------------------------------------------------------------ alerts (admin key from here on)

    require_admin = admin_dependency(settings, vigil_settings, redis)
    api = APIRouter(prefix="/console/api", tags=["console"], dependencies=[Depends(require_admin)])

    @api.get("/session")
    async def session() -> dict[str, Any]:
        return {
            "ok": True,
            "map": settings.world_atlas_path() is not None,
            "threat_types": list(THREAT_TYPES),
            "target_types": list(TARGET_TYPES),
            "severities": list(SEVERITIES),
            "urgencies": list(URGENCIES),
        }

    @api.get("/alerts")
    async def list_alerts(
        limit: Annotated[int, Query(ge=1, le=10_000)] = settings.list_limit,
        before: str | None = None,
        country: str = "",
        threat_type: str = "",
        target_type: str = "",
        min_severity: str = "",
        since_s: Annotated[float | None, Query(gt=0)] = None,
    ) -> dict[str, Any]:
        flt = views.AlertFilter(country, threat_type, target_type, min_severity, since_s)
        rows = await reader.alerts(limit, _entry_id(before) if before else None, flt)
        last = await redis.xrevrange(streams.ALERTS_CLASSIFIED, count=1)
        return {"alerts": rows, "last_id": views._s(last[0][0]) if last else "0-0"}

    @api.get("/alerts/stream")
    async def stream_alerts(request: Request, after: str = "$") -> StreamingResponse:
        """Server-sent events: one ``alert`` event per classified alert after ``after`` (an entry id)."""
        start = after if after == "$" else _entry_id(after)

        async def events() -> AsyncIterator[bytes]:
            last = start
            if last == "$":
                newest = await redis.xrevrange(streams.ALERTS_CLASSIFIED, count=1)
                last = views._s(newest[0][0]) if newest else "0-0"
            yield b"retry: 2000\n: connected\n\n"
            while not stopping.is_set() and not await request.is_disconnected():
                got = streams.read_entries(await redis.xread({streams.ALERTS_CLASSIFIED: last}, count=100,
                                                             block=settings.stream_block_ms))  # fmt: skip
                if not got:
                    yield b": keep-alive\n\n"
                    continue
                for raw_id, fields in got:
                    last = views._s(raw_id)
                    try:
                        _, ev = views.parse_classified(fields)
                    except Exception:
                        continue
                    data = orjson.dumps(views.summary(last, ev))
                    yield b"id: " + last.encode() + b"\nevent: alert\ndata: " + data + b"\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @api.get("/alerts/{entry_id}")
    async def alert_detail(entry_id: str) -> dict[str, Any]:
        entry_id = _entry_id(entry_id)
        _, ev = await reader.classified(entry_id)
        out = views.detail(entry_id, ev)
        notes = await reader.notifications_for(ev.alert.alert_id, ev.alert.revision, entry_id)
        dead = await reader.dead_letters_for(ev.correlation_id)
        out["journey"] = views.journey(ev, entry_id, notes, dead)
        return out

    @api.post("/alerts/{entry_id}/preview")
    async def preview(entry_id: str, request: Request) -> Response:
        """Who would get this alert now: notify's ``POST /v1/subscriptions:preview`` with its JSON."""
        body, _ev = await reader.classified(_entry_id(entry_id))
        return await _forward(request, "POST", "/v1/subscriptions:preview", content=body)

    # ------------------------------------------------------------------ subscriptions (notify's API)

    async def _forward(request: Request, method: str, path: str, content: bytes | None = None) -> Response:
        headers = {"Accept": "application/json"}
        if auth := request.headers.get("authorization"):
            headers["Authorization"] = auth
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = await notify.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("notify API unreachable", url=settings.notify_url, error=repr(exc))
            return JSONResponse(
                {"detail": f"notify's API is unreachable at {settings.notify_url} ({type(exc).__name__})"},
                status_code=502,
            )
        if resp.status_code == 204 or not resp.content:
            return Response(status_code=resp.status_code)
        try:
            payload = resp.json()
        except ValueError:
            payload = {"detail": resp.text[:500]}
        return JSONResponse(payload, status_code=resp.status_code)

    def _sub_id(value: str) -> str:
        if not _SUB_ID.fullmatch(value):
            raise HTTPException(404, detail="no such subscription")
        return value

    @api.get("/subscriptions")
    async def list_subscriptions(request: Request) -> Response:
        return await _forward(request, "GET", "/v1/subscriptions")

    @api.post("/subscriptions")
    async def create_subscription(request: Request) -> Response:
        return await _forward(request, "POST", "/v1/subscriptions", content=await request.body())

    @api.get("/subscriptions/{sub_id}")
    async def get_subscription(sub_id: str, request: Request) -> Response:
        return await _forward(request, "GET", f"/v1/subscriptions/{_sub_id(sub_id)}")

    @api.put("/subscriptions/{sub_id}")
    async def put_subscription(sub_id: str, request: Request) -> Response:
        return await _forward(request, "PUT", f"/v1/subscriptions/{_sub_id(sub_id)}", content=await request.body())

    @api.delete("/subscriptions/{sub_id}")
    async def delete_subscription(sub_id: str, request: Request) -> Response:
        return await _forward(request, "DELETE", f"/v1/subscriptions/{_sub_id(sub_id)}")

    # ------------------------------------------------------------------ health and dead letters

    @api.get("/health")
    async def health() -> dict[str, Any]:
        statuses = await pipeline_status(redis)
        dl = int(await redis.xlen(streams.DEADLETTER)) if await redis.exists(streams.DEADLETTER) else 0
        return {
            "streams": as_dict(statuses),
            "problems": problems(statuses),
            "dead_letters": dl,
            "feeds": await reader.feeds(),
        }

    @api.get("/deadletters")
    async def list_dead_letters(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> dict[str, Any]:
        rows = await deadletters.list_entries(redis_url, limit=limit)
        return {"dead_letters": [_dead_letter_view(x) for x in rows]}

    @api.get("/deadletters/{entry_id}")
    async def get_dead_letter(entry_id: str) -> dict[str, Any]:
        rec = await deadletters.get_entry(redis_url, _entry_id(entry_id))
        if rec is None:
            raise HTTPException(404, detail=f"no dead letter {entry_id}")
        return _dead_letter_view(rec)

    @api.post("/deadletters/{entry_id}/replay")
    async def replay_dead_letter(entry_id: str) -> dict[str, Any]:
        entry_id = _entry_id(entry_id)
        if await deadletters.get_entry(redis_url, entry_id) is None:
            raise HTTPException(404, detail=f"no dead letter {entry_id}")
        n = await deadletters.replay(redis_url, [entry_id])
        if n == 0:
            raise HTTPException(422, detail="this dead letter has no original entry to replay")
        log.info("dead letter replayed from the console", entry_id=entry_id)
        return {"replayed": n}

    page.include_router(api)
    return page
