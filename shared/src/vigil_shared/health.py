"""The HTTP app every service process serves: /healthz, /readyz, /metrics plus the services' routes.

* ``/healthz`` — **liveness** (restart me when it fails). Fails when a worker's helper loop (claim,
  watchdog) or a service's background loop has ended, or when a consume loop has been down for longer
  than ``liveness_grace_s``: the worker's watchdog restarts a stopped subscriber within seconds, so a
  loop that stays down means the process is wedged. It does **not** touch Redis: an unreachable Redis
  is not cured by restarting the service (``/readyz`` reports it).
* ``/readyz`` — **readiness**: Redis answers within 2 s, every consumed stream has its consumer group,
  every consume loop runs.
* ``/metrics`` — Prometheus text format; the group gauges (lag, pending, length) and
  ``vigil_consume_loop_up`` are refreshed from Redis on each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from vigil_shared import metrics
from vigil_shared.status import stream_status

DEFAULT_LIVENESS_GRACE_S = 60.0


def consume_loop_alive(worker: Any) -> tuple[bool, str]:
    """Is the worker's FastStream consume loop running (subscriber started and its task alive)?"""
    sub = getattr(worker, "_subscriber", None)
    if sub is None:
        return False, "consume loop not attached"
    if not getattr(sub, "running", False):
        return False, "consume loop stopped"
    tasks = getattr(sub, "tasks", None)
    if tasks is not None and tasks and all(t.done() for t in tasks):
        return False, "consume loop task ended"
    return True, "ok"


class _DownSince:
    """When each consume loop was first seen down (cleared when seen up again)."""

    def __init__(self) -> None:
        self.since: dict[int, float] = {}

    def observe(self, worker: Any) -> tuple[bool, str, float]:
        alive, why = consume_loop_alive(worker)
        metrics.CONSUME_LOOP_UP.labels(stream=worker.stream, group=worker.group).set(1 if alive else 0)
        if alive:
            self.since.pop(id(worker), None)
            return True, why, 0.0
        first = self.since.setdefault(id(worker), time.monotonic())
        return False, why, time.monotonic() - first


def _reply(problems: list[str]) -> JSONResponse:
    return JSONResponse(
        {"status": "fail" if problems else "ok", "problems": problems}, status_code=503 if problems else 200
    )


def build_http_app(
    *,
    title: str,
    routers: Sequence[APIRouter],
    redis: Redis,
    workers: Sequence[Any],
    background: Sequence[asyncio.Task[None]],
    liveness_grace_s: float = DEFAULT_LIVENESS_GRACE_S,
) -> FastAPI:
    app = FastAPI(title=title, version="0.1.0")
    down = _DownSince()
    for w in workers:
        metrics.instrument_worker(w)

    @app.get("/healthz", tags=["ops"], summary="Liveness: consume loops and background loops alive")
    async def healthz() -> JSONResponse:
        problems: list[str] = []
        for w in workers:
            ok, why = w.healthy()
            if not ok:
                problems.append(f"{w.stream}/{w.group}: {why}")
            alive, why, down_for = down.observe(w)
            if not alive and down_for >= liveness_grace_s:
                problems.append(f"{w.stream}/{w.group}: {why} for {down_for:.0f}s (not restarted)")
        problems += [f"{t.get_name()} ended" for t in background if t.done() and t.get_name() != "http"]
        return _reply(problems)

    @app.get("/readyz", tags=["ops"], summary="Readiness: Redis reachable, consumer groups present")
    async def readyz() -> JSONResponse:
        problems: list[str] = []
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
        except Exception as exc:
            return _reply([f"redis unreachable: {type(exc).__name__}: {exc}"])
        for w in workers:
            try:
                st = await asyncio.wait_for(stream_status(redis, w.stream), timeout=2)
            except Exception as exc:
                problems.append(f"cannot read {w.stream}: {type(exc).__name__}: {exc}")
                continue
            if not any(g.name == w.group for g in st.groups):
                problems.append(f"group {w.group} missing on {w.stream}")
            alive, why, _ = down.observe(w)
            if not alive:
                problems.append(f"{w.stream}/{w.group}: {why}")
        return _reply(problems)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics_endpoint() -> PlainTextResponse:
        for w in workers:
            down.observe(w)
            with contextlib.suppress(Exception):  # metrics must not fail because Redis blipped
                await asyncio.wait_for(stream_status(redis, w.stream), timeout=2)
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
