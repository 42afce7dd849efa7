"""Running services: the plugin interface a service implements and the process that hosts it.

A service package exposes a :class:`Service` under the ``vigil.services`` entry-point group. The
runtime builds one FastStream broker, one Redis client and one HTTP app per process, asks each
service for its :class:`ServiceParts` (stream workers, HTTP routers, background loops), and runs them
until SIGTERM/SIGINT. ``vigil run all`` hosts every installed service in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.redis import RedisBroker
from hiredis import pack_command as hiredis_pack_command
from redis.asyncio import Redis

from vigil_shared.cancellation import raise_if_cancel_requested
from vigil_shared.health import build_http_app
from vigil_shared.logging import configure_logging
from vigil_shared.retention import retention_loop
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import StreamWorker

log = structlog.get_logger("vigil.runtime")

Background = Callable[[], Awaitable[None]]


@dataclass
class ServiceContext:
    settings: VigilSettings
    redis: Redis
    broker: RedisBroker


@dataclass
class ServiceParts:
    workers: Sequence[StreamWorker[Any]] = ()
    routers: Sequence[APIRouter] = ()
    background: Sequence[Background] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()


@dataclass(frozen=True)
class Service:
    """What a service package registers under the ``vigil.services`` entry-point group."""

    name: str
    build: Callable[[ServiceContext], Awaitable[ServiceParts]]
    description: str = ""


def installed_services(names: Sequence[str] | None = None) -> dict[str, Service]:
    """The services registered under ``vigil.services`` (only ``names`` are imported, if given)."""
    found: dict[str, Service] = {}
    for ep in entry_points(group="vigil.services"):
        if names is not None and ep.name not in names:
            found.setdefault(ep.name, None)  # type: ignore[arg-type]  # known, not loaded
            continue
        try:
            service = ep.load()
        except Exception as exc:
            raise SystemExit(f"service {ep.name} ({ep.value}) cannot be loaded: {exc}") from exc
        if not isinstance(service, Service):
            raise SystemExit(f"entry point {ep.name} ({ep.value}) is not a vigil_shared.runtime.Service")
        found[ep.name] = service
    return dict(sorted(found.items()))


def make_broker(url: str, graceful_timeout: float | None = None) -> RedisBroker:
    """FastStream's broker; its own per-message logs go to DEBUG, its errors still show.

    ``graceful_timeout``: on stop, how long FastStream waits for in-flight batches to finish.

    ``apply_types=False``: Vigil's subscribers (:meth:`vigil_shared.worker.StreamWorker.attach`) take
    the raw batch and validate each entry themselves, and inject nothing, so FastStream's dependency
    injection (fast_depends: a call model solved, an anyio task group opened per read batch) only
    cost CPU. The handlers' annotations still document the payload model in AsyncAPI.
    """
    fs_logger = logging.getLogger("vigil.faststream")
    fs_logger.setLevel(logging.WARNING)
    if graceful_timeout is None:
        return RedisBroker(url, logger=fs_logger, log_level=logging.DEBUG, apply_types=False)
    return RedisBroker(
        url, logger=fs_logger, log_level=logging.DEBUG, graceful_timeout=graceful_timeout, apply_types=False
    )


def redis_client(url: str) -> Redis:
    """The process's Redis client; its connections pack commands in C (:class:`HiredisPacking`)."""
    client = Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_keepalive=True)
    pool = client.connection_pool
    # the connection class from_url chose for the URL's scheme (TCP, TLS, unix socket), with C packing
    pool.connection_class = with_hiredis_packing(pool.connection_class)
    return client


_PLAIN_ARGUMENT_TYPES = frozenset((bytes, str, int, float))
_NAME_TYPES = frozenset((bytes, str))


class HiredisPacking:
    """A redis-py asyncio connection mix-in that packs commands with hiredis's C ``pack_command``.

    Why: redis-py's asyncio connection packs every argument in Python (~0.5 µs each; its synchronous
    connection already uses hiredis for this). The fenced commit of a notify batch has ~800 arguments,
    notify's and classify's batch scripts hundreds more: ~2.5 µs of CPU per alert in each service.

    The bytes sent are the same as redis-py's: the C packer is used only for arguments of exactly the
    types whose encoding the two agree on (``bytes``, ``str`` as UTF-8 strict, ``int`` but not
    ``bool``, ``float``) with the client's default encoding; anything else (``bool``, ``memoryview``,
    subclasses such as enums, another encoding) takes redis-py's own packer, errors included.
    ``tests/shared/test_runtime_packing.py`` compares the two byte for byte."""

    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        encoder = self.encoder
        if (
            args
            and type(args[0]) in _NAME_TYPES
            and encoder.encoding == "utf-8"
            and encoder.encoding_errors == "strict"
            and _PLAIN_ARGUMENT_TYPES.issuperset(map(type, args))
        ):
            # like redis-py: a command name of several words ("CONFIG GET") is sent as several arguments
            first = args[0]
            if type(first) is str:
                args = (*first.encode().split(), *args[1:])
            elif b" " in first:
                args = (*first.split(), *args[1:])
            return [hiredis_pack_command(args)]
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed


_WITH_PACKING: dict[type[Any], type[Any]] = {}


def with_hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """``connection_class`` with :class:`HiredisPacking` mixed in (one subclass per class)."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    made = _WITH_PACKING.get(connection_class)
    if made is None:
        made = _WITH_PACKING[connection_class] = type(
            f"HiredisPacking{connection_class.__name__}", (HiredisPacking, connection_class), {}
        )
    return made


class Host:
    """One process hosting one or more services."""

    def __init__(self, services: Sequence[Service], settings: VigilSettings) -> None:
        self.services = services
        self.settings = settings
        self.redis = redis_client(settings.redis_url)
        self.broker = make_broker(settings.redis_url, graceful_timeout=settings.shutdown_timeout_s)
        self.parts: list[ServiceParts] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._stop = asyncio.Event()

    @property
    def workers(self) -> list[StreamWorker[Any]]:
        return [w for p in self.parts for w in p.workers]

    async def start(self) -> None:
        ctx = ServiceContext(self.settings, self.redis, self.broker)
        for service in self.services:
            parts = await service.build(ctx)
            self.parts.append(parts)
            for worker in parts.workers:
                worker.attach(self.broker)
                await worker.prepare(self.redis)
        # What the services built (gazetteer, models, subscription index, imported modules) lives as
        # long as the process: move it out of the cyclic GC's sight, so the collections that a stream
        # of short-lived events triggers no longer walk hundreds of thousands of long-lived objects.
        gc.collect()
        gc.freeze()
        await self.broker.start()
        for worker in self.workers:
            await worker.start_background(self.redis)
        for parts in self.parts:
            for bg in parts.background:
                self.tasks.append(
                    asyncio.create_task(self._supervise(bg), name=getattr(bg, "__name__", "bg"))
                )
        if self.settings.retention_interval_s > 0:

            async def retention() -> None:
                await retention_loop(self.redis, self.settings)

            self.tasks.append(asyncio.create_task(self._supervise(retention), name="retention"))
        self.app = build_http_app(
            title="Vigil " + "+".join(s.name for s in self.services),
            routers=[r for p in self.parts for r in p.routers],
            redis=self.redis,
            workers=self.workers,
            background=self.tasks,
        )
        if self.settings.http_port:
            config = uvicorn.Config(
                self.app,
                host=self.settings.http_host,
                port=self.settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
            self._server = uvicorn.Server(config)
            # no install_signal_handlers override: uvicorn >= 0.29 has no such hook (the assignment was
            # a dead attribute); its serve() captures SIGINT/SIGTERM itself while it runs (capture_signals)
            self.tasks.append(asyncio.create_task(self._server.serve(), name="http"))
        log.info(
            "service started",
            services=[s.name for s in self.services],
            consumer=self.settings.consumer_name,
            http_port=self.settings.http_port or None,
        )

    async def _supervise(self, bg: Background) -> None:
        """Restart a background loop that crashed, with back-off; a clean return ends it."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                await bg()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # not a crash when the task was cancelled: the loop's Redis client can turn a cancellation
                # that lands on one of its timeouts into one of its errors (vigil_shared.cancellation)
                raise_if_cancel_requested()
                log.exception(
                    "background loop crashed; restarting", loop=getattr(bg, "__name__", "bg"), in_s=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        """Graceful stop, within ``shutdown_timeout_s`` + a few seconds (compose waits 15 s):

        1. stop reading: the workers' watchdogs and claim loops start nothing new, then FastStream's
           subscribers stop fetching and wait (up to ``shutdown_timeout_s``) for the batches in
           flight, which commit or stay pending as usual;
        2. the workers' claim loops finish their current batch (bounded), then each worker hands its
           remaining pending entries back so another replica claims them at once, and leaves its
           group when it owns nothing;
        3. HTTP, background loops and service resources are closed.
        """
        self._stop.set()
        started = time.monotonic()
        budget = self.settings.shutdown_timeout_s
        log.info("stopping: no new entries are read; in-flight work finishes")
        for worker in self.workers:  # first: their watchdogs must not restart what the broker stops
            worker.begin_stop()
        try:
            await asyncio.wait_for(self.broker.stop(), timeout=budget + 1.0)
        except Exception as exc:
            log.warning("broker did not stop cleanly", error=repr(exc))
        remaining = max(1.0, budget - (time.monotonic() - started))
        for worker in self.workers:
            await worker.stop(grace_s=remaining)
        if self._server is not None:
            self._server.should_exit = True
        for parts in self.parts:
            for cb in parts.on_stop:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(cb(), timeout=2.0)
        for t in self.tasks:
            if t.get_name() != "http":
                t.cancel()
        await self._wait_for_tasks()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        handed = sum(w.stats.handed_back for w in self.workers)
        log.info("stopped", seconds=round(time.monotonic() - started, 2), handed_back=handed)

    async def _wait_for_tasks(self, timeout_s: float = 3.0) -> None:
        """Wait (``timeout_s``) for the background loops just cancelled and the HTTP server told to exit;
        one still running then is named in a warning (a loop that went on after its cancellation: one
        lost inside a tick, :mod:`vigil_shared.cancellation`) and cancelled again (waited for 2 s more)."""
        if not self.tasks:
            return
        _, late = await asyncio.wait(self.tasks, timeout=timeout_s)
        if late:
            log.warning(
                "still running after the stop asked them to end; cancelled again",
                tasks=sorted(t.get_name() for t in late),
                after_s=timeout_s,
            )
            for t in late:
                t.cancel()
            await asyncio.wait(late, timeout=2.0)
        for t in self.tasks:  # their outcomes retrieved (no "exception was never retrieved" at exit)
            if t.done() and not t.cancelled():
                t.exception()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()


def run(names: Sequence[str]) -> None:
    """Entry for ``vigil run``: host the named services (``all`` = every installed one)."""
    everything = not names or list(names) == ["all"]
    available = installed_services(None if everything else names)
    if everything:
        chosen = list(available.values())
    else:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise SystemExit(
                f"unknown service(s): {', '.join(unknown)}; installed: {', '.join(available) or 'none'}"
            )
        chosen = [available[n] for n in names]
    settings = VigilSettings()
    configure_logging(settings.log_level, settings.log_format, "+".join(s.name for s in chosen))
    asyncio.run(Host(chosen, settings).run_until_signalled())
