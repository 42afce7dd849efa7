"""A tiny local HTTP server for the security tests (threaded, loopback, free port)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str, bytes]]  # set per server

    def log_message(self, *_: object) -> None:
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        body = self._body()
        self.server.requests.append((self.command, self.path, body))  # type: ignore[attr-defined]
        path = self.path
        if path.startswith("/redirect?to="):
            self._reply(302, headers={"Location": path.split("=", 1)[1]})
        elif path == "/loop":
            self._reply(302, headers={"Location": "/loop"})
        elif path == "/big":
            # no Content-Length: the client must stop by itself
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
            self.close_connection = True
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            self.close_connection = True
        elif path.startswith("/feed"):
            feed = self.server.feed_body  # type: ignore[attr-defined]
            self._reply(200, feed, {"Content-Type": "application/rss+xml"})
        else:
            self._reply(200, b"ok", {"Content-Type": "text/plain"})

    do_GET = _handle
    do_POST = _handle


@contextmanager
def local_http_server(feed_body: bytes = b"") -> Iterator[tuple[str, ThreadingHTTPServer]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.requests = []  # type: ignore[attr-defined]
    server.feed_body = feed_body  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
