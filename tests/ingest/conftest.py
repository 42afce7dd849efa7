"""Fixtures for the ingest core tests: sample feeds, a real Redis, a local feed HTTP server.

Redis: the session-wide ``redis_url`` fixture of ``tests/conftest.py`` is used when it exists;
otherwise a private ``redis-server`` is started on a free port in a temporary directory (never
fakeredis, never mocks, never the keyspace of a shared server on 6379).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.envelope import decode_entry
from vigil_shared.events import AlertReceived, parse_event

FEEDS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    return FEEDS_DIR


@pytest.fixture(scope="session")
def feed_bytes() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (FEEDS_DIR / name).read_bytes()

    return read


# ---------------------------------------------------------------- Redis


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def private_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for this test session (only started if a test needs it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH")
    workdir = tmp_path_factory.mktemp("ingest-redis")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis_sync.Redis.from_url(url, socket_timeout=0.5)
                client.ping()
                client.close()
                break
            except redis_sync.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def ingest_redis_url(request: pytest.FixtureRequest) -> str:
    """A real, emptied Redis: the project's ``redis_url`` fixture if present, else a private one."""
    try:
        url = str(request.getfixturevalue("redis_url"))
    except pytest.FixtureLookupError:
        url = str(request.getfixturevalue("private_redis_url"))
    client = redis_sync.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
async def dedup_redis(ingest_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(ingest_redis_url)
    yield client
    await client.aclose()


# ---------------------------------------------------------------- local feed server


@dataclass
class Route:
    body: bytes
    content_type: str = "application/xml"
    status: int = 200
    delay_s: float = 0.0
    etag: bool = True
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))


@dataclass
class FeedServer:
    """A local HTTP server serving in-memory documents with ETag / Last-Modified support."""

    base_url: str
    routes: dict[str, Route]
    hits: dict[str, int]
    conditional_hits: dict[str, int]

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, body: bytes, content_type: str = "application/xml", **kwargs: object) -> None:
        self.routes[path] = Route(body, content_type, **kwargs)  # type: ignore[arg-type]


def _make_handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            server.hits[path] = server.hits.get(path, 0) + 1
            route = server.routes.get(path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.delay_s:
                time.sleep(route.delay_s)
            etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
            if route.status == 200 and (
                (route.etag and self.headers.get("If-None-Match") == etag)
                or (not route.etag and self.headers.get("If-Modified-Since") == route.last_modified)
            ):
                server.conditional_hits[path] = server.conditional_hits.get(path, 0) + 1
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                self.send_header("ETag", etag)
            self.send_header("Last-Modified", route.last_modified)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(route.body)

    return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer(base_url="", routes={}, hits={}, conditional_hits={})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(server))
    httpd.daemon_threads = True
    server.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------- what landed in the stream


def _decode_alerts(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[AlertReceived]:
    out = []
    for _entry_id, fields in entries:
        body, headers = decode_entry(fields)
        event = parse_event(AlertReceived, body)
        assert headers.get("correlation_id") == event.correlation_id
        out.append(event)
    return out


@pytest.fixture
def stream_alerts() -> Callable[[Redis], Awaitable[list[AlertReceived]]]:
    """``await stream_alerts(redis)``: every AlertReceived in ``vigil.alerts.received``, oldest first."""

    async def read(client: Redis) -> list[AlertReceived]:
        return _decode_alerts(await client.xrange(streams.ALERTS_RECEIVED))

    return read


@pytest.fixture
def stream_alerts_sync() -> Callable[[str], list[AlertReceived]]:
    """``stream_alerts_sync(url)``: the same, with a synchronous client (for CLI tests)."""

    def read(url: str) -> list[AlertReceived]:
        client = redis_sync.Redis.from_url(url)
        try:
            return _decode_alerts(client.xrange(streams.ALERTS_RECEIVED))  # type: ignore[arg-type]
        finally:
            client.close()

    return read
