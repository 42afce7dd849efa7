"""Fixtures for notify tests: real protocol peers. Redis comes from tests/conftest.py (``redis``)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from vigil_notify.channels.webhook import SIGNATURE_HEADER, InvalidSignature, verify_signature
from vigil_notify.settings import NotifySettings

from .helpers import free_port


@pytest.fixture
def settings() -> NotifySettings:
    return NotifySettings(
        backoff_base_s=0.01, backoff_max_s=0.05, send_timeout_s=2.0, max_attempts=4,
        subscriptions_refresh_s=0, in_flight_poll_s=0.02, throttle_max=100,
        gc_freeze=False,  # process-wide: not inside the shared test process (test_gc_freeze.py checks it)
    )  # fmt: skip


# ------------------------------------------------------------------ a real HTTP webhook receiver


@dataclass
class Receiver:
    url: str
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    bad_signatures: int = 0
    plan: Callable[[int], int] = lambda n: 200
    hang: threading.Event | None = None

    def webhook_url(self, path: str = "/hook") -> str:
        return f"webhook+{self.url}{path}?secret={self.secret}"


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Event]] = []

    def start(
        plan: Callable[[int], int] = lambda n: 200, secret: str = "s3cr3t-hook-key", hang: bool = False
    ):
        release = threading.Event()
        state = Receiver(url="", secret=secret, plan=plan, hang=release if hang else None)
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if state.hang is not None:
                    state.hang.wait(30)
                    return
                try:
                    verify_signature(body, self.headers.get(SIGNATURE_HEADER), state.secret)
                except InvalidSignature:
                    with lock:
                        state.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with lock:
                    n = len(state.statuses) + 1
                    status = state.plan(n)
                    state.statuses.append(status)
                    if status < 300:
                        state.received.append(json.loads(body))
                        state.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, release))
        return state

    yield start
    for server, release in servers:
        release.set()
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ a real SMTP server


@dataclass
class Mailbox:
    port: int
    messages: list[Any] = field(default_factory=list)
    reject_with: str | None = None


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_port())

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if box.reject_with:
                return box.reject_with
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def examples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "services" / "notify" / "examples"
