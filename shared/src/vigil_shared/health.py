"""The HTTP app every service process serves: /healthz, /readyz, /metrics plus the services' routes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from vigil_shared.status import stream_status


def build_http_app(
    *,
    title: str,
    routers: Sequence[APIRouter],
    redis: Redis,
    workers: Sequence[Any],
    background: Sequence[asyncio.Task[None]],
) -> FastAPI:
    app = FastAPI(title=title, version="0.1.0")

    @app.get("/healthz", tags=["ops"], summary="Liveness: consume loops and background loops alive")
    async def healthz() -> JSONResponse:
        problems: list[str] = []
        for w in workers:
            ok, why = w.healthy()
            if not ok:
                problems.append(f"{w.stream}/{w.group}: {why}")
        problems += [f"{t.get_name()} ended" for t in background if t.done() and t.get_name() != "http"]
        status = 503 if problems else 200
        return JSONResponse({"status": "fail" if problems else "ok", "problems": problems}, status_code=status)

    @app.get("/readyz", tags=["ops"], summary="Readiness: Redis reachable, consumer groups present")
    async def readyz() -> JSONResponse:
        problems: list[str] = []
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
            for w in workers:
                st = await stream_status(redis, w.stream)
                if not any(g.name == w.group for g in st.groups):
                    problems.append(f"group {w.group} missing on {w.stream}")
                if not w.subscriber_running:
                    problems.append(f"consume loop of {w.stream}/{w.group} not running")
        except Exception as exc:
            problems.append(f"redis unreachable: {exc}")
        status = 503 if problems else 200
        return JSONResponse({"status": "fail" if problems else "ok", "problems": problems}, status_code=status)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics() -> PlainTextResponse:
        for w in workers:
            try:
                await stream_status(redis, w.stream)
            except Exception:  # metrics must not fail because Redis blipped
                pass
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
