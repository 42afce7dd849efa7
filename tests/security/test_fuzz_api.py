"""Fuzzing the HTTP APIs from their own OpenAPI specs (schemathesis, property-based).

Each service's app is built the way the runtime builds it (``vigil_shared.health.build_http_app`` with
the service's routers, over the session's real Redis) and served in-process by uvicorn on a private
loop in a background thread (the Redis clients live on that loop, so no event loop is shared with the
test). For every operation schemathesis generates valid and invalid requests from the spec and checks
that the answer is never a 5xx and that status, content type and body conform to the spec.

Authentication is off here (``VIGIL_AUTH_DISABLED``, as in every non-security test) so the
generated bodies reach the handlers; the key checks have their own tests (``test_auth.py``).
Bounded: ``MAX_EXAMPLES`` per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis as redis_sync
import schemathesis
import uvicorn
from fastapi import APIRouter, FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from vigil_shared.embedded_redis import free_port
from vigil_shared.health import build_http_app
from vigil_shared.settings import VigilSettings

pytestmark = [pytest.mark.slow]

MAX_EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible, never flaky
    suppress_health_check=list(HealthCheck),
    database=None,
)
# the refusals Vigil's APIs give (SECURITY.md / README): 400 bad input, 401/403 keys, 404 unknown id,
# 405, 409, 413 body too large, 415 media type, 422 invalid, 429 rate limit
DOCUMENTED_REFUSALS = {400, 401, 403, 404, 405, 409, 413, 415, 422, 429}

AppFactory = Callable[[Redis, str], Awaitable[FastAPI]]


class _Servers:
    """uvicorn servers on one private event loop in a daemon thread."""

    def __init__(self, redis_url: str, factories: dict[str, AppFactory]) -> None:
        self.redis_url = redis_url
        self.factories = factories
        self.urls: dict[str, str] = {}
        self._servers: list[uvicorn.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-servers", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        redis = Redis.from_url(self.redis_url)
        tasks = []
        for name, factory in self.factories.items():
            app = await factory(redis, self.redis_url)
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
            )
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            self._servers.append(server)
            self.urls[name] = f"http://127.0.0.1:{port}"
            tasks.append(asyncio.create_task(server.serve()))
        while not all(s.started for s in self._servers):  # noqa: ASYNC110 (uvicorn has no started event)
            await asyncio.sleep(0.02)
        self._ready.set()
        await asyncio.gather(*tasks)
        await redis.aclose()

    def start(self) -> _Servers:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        for s in self._servers:
            s.should_exit = True
        self._thread.join(15)


async def _ingest(redis: Redis, redis_url: str) -> FastAPI:
    from vigil_ingest.api import build_router
    from vigil_ingest.settings import IngestSettings

    settings = IngestSettings(max_body_bytes=16_384, max_batch_items=20)
    return build_http_app(title="Vigil ingest", routers=[build_router(redis, settings)], redis=redis,
                          workers=[], background=[])  # fmt: skip


def _notify_app(redis: Redis) -> FastAPI:
    from vigil_notify.api import build_router
    from vigil_notify.subscriptions import SubscriptionStore

    return build_http_app(title="Vigil notify", routers=[build_router(SubscriptionStore(redis))], redis=redis,
                          workers=[], background=[])  # fmt: skip


async def _notify(redis: Redis, redis_url: str) -> FastAPI:
    return _notify_app(redis)


async def _capfeed(redis: Redis, redis_url: str) -> FastAPI:
    from vigil_capfeed.service import SERVICE
    from vigil_shared.runtime import ServiceContext, make_broker

    parts = await SERVICE.build(ServiceContext(VigilSettings(redis_url=redis_url), redis, make_broker(redis_url)))
    return build_http_app(title="Vigil capfeed", routers=parts.routers, redis=redis, workers=[], background=[])


class _PublishedRouter(APIRouter):
    """The console hides its routes from /openapi.json (a page, not a public API); publishing them here
    lets its data routes be fuzzed from a spec like the other APIs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["include_in_schema"] = True
        super().__init__(*args, **kwargs)


async def _console(redis: Redis, redis_url: str) -> FastAPI:
    from vigil_console import api
    from vigil_console.settings import ConsoleSettings

    settings = ConsoleSettings(notify_url="http://notify.internal", stream_block_ms=100)
    # the console forwards subscription calls to notify's API: here notify's real app, in-process
    notify = httpx.AsyncClient(transport=httpx.ASGITransport(app=_notify_app(redis)), base_url=settings.notify_url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "APIRouter", _PublishedRouter)
        router = api.build_router(redis, redis_url, settings, VigilSettings(redis_url=redis_url), notify,
                                  asyncio.Event())  # fmt: skip
    return build_http_app(title="Vigil console", routers=[router], redis=redis, workers=[], background=[])


@pytest.fixture(scope="module")
def servers(redis_server_url: str) -> Iterator[_Servers]:
    client = redis_sync.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIGIL_AUTH_DISABLED", "true")
        mp.setenv("VIGIL_API_RATE_PER_S", "0")
        running = _Servers(
            redis_server_url, {"ingest": _ingest, "notify": _notify, "capfeed": _capfeed, "console": _console}
        ).start()
        try:
            yield running
        finally:
            running.stop()


EXCLUDED = {
    "/metrics",  # Prometheus text, no schema
    "/console/api/alerts/stream",  # the live feed (server-sent events) never ends by design; tests/console
}


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.config.base_url = url
    return [op for op in (r.ok() for r in schema.get_all_operations()) if _fuzzed(op.path)]


def _fuzzed(path: str) -> bool:
    # the console's page, static files and map outline are files, not an API
    return path not in EXCLUDED and (path.startswith("/console/api/") or not path.startswith("/console"))


def _strategy(op: Any) -> st.SearchStrategy[Any]:
    modes = [op.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation without anything to make invalid
        modes.append(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(modes)


def _check(case: Any, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=20)
    status = response.status_code
    assert status < 500, f"{case.method} {case.path} -> {status}: {response.text[:500]}"
    if status < 400:
        case.validate_response(response, checks=CHECKS)
        return
    # refusals: Vigil's errors are JSON with a "detail" (a message or FastAPI's list of problems); the
    # specs document FastAPI's list form only, so their shape is checked here rather than by the spec
    assert status in DOCUMENTED_REFUSALS, f"{case.method} {case.path} -> unexpected {status}: {response.text[:300]}"
    content_type = response.headers.get("content-type") or [""]  # schemathesis: header -> list of values
    assert str(content_type[0]).startswith("application/json"), response.headers
    assert "detail" in response.json()


@pytest.mark.parametrize("service", ["ingest", "notify", "capfeed", "console"])
def test_api_fuzz(servers: _Servers, service: str) -> None:
    """Every operation of the service's spec, MAX_EXAMPLES valid and invalid requests each."""
    url = servers.urls[service]
    operations = _operations(url)
    assert operations
    failures = []
    for op in operations:

        @HYPOTHESIS
        @given(case=_strategy(op))
        def fuzz(case: Any) -> None:
            _check(case, url)

        try:
            fuzz()
        except Exception as exc:  # every operation runs; all failures are reported together
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_servers_answer(servers: _Servers) -> None:
    """The harness itself: every app is up and publishes a spec (else the fuzz tests above test nothing)."""
    deadline = time.monotonic() + 10
    for url in servers.urls.values():
        while True:
            r = httpx.get(f"{url}/openapi.json", timeout=5)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
        assert r.status_code == 200
        assert r.json()["paths"]
