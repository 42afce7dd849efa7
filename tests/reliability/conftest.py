"""Chaos-test harness: a private Redis with AOF, real ``vigil run ...`` OS processes, a JSONL sink.

Every test gets its own ``redis-server`` (AOF on, ``appendfsync always``) in a temporary directory,
never the shared server. Services are started as ``.venv/bin/vigil run <service>`` subprocesses with
short claim timings; the test-only ``chaos-classify`` service (real classify + fault knobs) is found
through ``PYTHONPATH`` (see ``plugin/vigil_chaos_plugin.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.embedded_redis import EmbeddedRedis
from vigil_shared.events import AlertReceived
from vigil_shared.worker import Publication, publish_events

VIGIL = str(Path(sys.executable).parent / "vigil")
PLUGIN_DIR = Path(__file__).parent / "plugin"

FAST_CLAIMS = {
    "VIGIL_CLAIM_IDLE_MS": "1500",
    "VIGIL_CLAIM_INTERVAL_S": "0.5",
    "VIGIL_BLOCK_MS": "100",
    "VIGIL_BATCH_SIZE": "50",
    "VIGIL_CONSUMER_IDLE_REMOVE_S": "3",
    "VIGIL_MAX_DELIVERIES": "3",
    "VIGIL_SHUTDOWN_TIMEOUT_S": "8",
}


def make_alert(run: str, i: int) -> AlertReceived:
    """Distinct title and text per alert (notify folds identical content into one notification)."""
    return AlertReceived(
        correlation_id=f"corr-{run}-{i}",
        producer="chaos-test",
        alert_id=f"al_{run}_{i:05d}",
        source_kind="api",
        source_name="chaos",
        title=f"Security alert {run} number {i}",
        text=f"Demonstrations are expected near the main railway station in Paris (report {run}-{i}). "
        "Avoid the area and follow the instructions of local authorities.",
    )


async def send_alerts(redis: Redis, run: str, numbers: range, chunk: int = 100) -> list[str]:
    ids = []
    batch: list[Publication] = []
    for i in numbers:
        a = make_alert(run, i)
        ids.append(a.alert_id)
        batch.append(Publication(streams.ALERTS_RECEIVED, a))
        if len(batch) >= chunk:
            await publish_events(redis, batch)
            batch = []
    if batch:
        await publish_events(redis, batch)
    return ids


@dataclass
class Proc:
    service: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def consumer(self) -> str:
        return f"{socket.gethostname()}-{self.pid}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out


@dataclass
class Pipeline:
    tmp: Path
    server: EmbeddedRedis
    out: Path
    procs: list[Proc] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_") and k != "REDIS_URL"}
        env.update(
            {
                "REDIS_URL": self.url,
                "VIGIL_HTTP_PORT": "0",
                "VIGIL_LOG_FORMAT": "json",
                "VIGIL_LOG_LEVEL": "INFO",
                "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(self.tmp / "subscriptions.yaml"),
                "VIGIL_NOTIFY_THROTTLE_MAX": "1000000",
                "PYTHONPATH": str(PLUGIN_DIR),
                **FAST_CLAIMS,
                **self.extra_env,
                **overrides,
            }
        )
        return env

    def start(self, service: str, **env: str) -> Proc:
        n = sum(1 for p in self.procs if p.service == service)
        log = self.tmp / f"{service}-{n}.log"
        fh = log.open("wb")
        popen = subprocess.Popen(
            [VIGIL, "run", service], env=self.env(**env), cwd=self.tmp, stdout=fh, stderr=subprocess.STDOUT
        )
        fh.close()
        proc = Proc(service, popen, log)
        self.procs.append(proc)
        return proc

    def vigil(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [VIGIL, *args], env=self.env(), cwd=self.tmp, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"vigil {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    async def wait_ready(self, procs: list[Proc], within: float = 30.0) -> None:
        """Until each process logged "service started" (its group exists and its subscriber runs;
        Redis 7.0 only lists a consumer in the group once it has read something)."""

        async def started() -> bool:
            for p in procs:
                if not p.alive():
                    raise AssertionError(f"{p.service} exited early:\n{p.log_text()[-3000:]}")
                if not any(e.get("event") == "service started" for e in p.log_events()):
                    return False
            return True

        try:
            await wait_until(started, within=within, what="services ready")
        except AssertionError:
            raise AssertionError(f"services not ready within {within}s\n{self.dump_logs()}") from None

    def delivered(self) -> collections.Counter[str]:
        """alert_id -> how many times it reached the JSONL channel."""
        counts: collections.Counter[str] = collections.Counter()
        if not self.out.exists():
            return counts
        # only whole lines: notify appends a batch's lines in one write(2), which a reader polling the
        # file meanwhile can see part of (a read is not atomic with a multi-page write)
        text = self.out.read_text()
        for line in text[: text.rfind("\n") + 1].splitlines():
            if line.strip():
                doc = json.loads(line)
                if doc.get("alert_id"):
                    counts[doc["alert_id"]] += 1
        return counts

    def restart_redis(self, kill: bool = True) -> float:
        """Stop the server (SIGKILL by default) and start it again on the same port and directory."""
        started = time.monotonic()
        assert self.server.process is not None
        if kill:
            self.server.process.send_signal(signal.SIGKILL)
            self.server.process.wait(5)
            self.server.process = None
        else:
            self.server.stop()
        self.server.start()
        return time.monotonic() - started

    def terminate_all(self) -> None:
        for p in self.procs:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(5)

    def dump_logs(self) -> str:
        return "\n".join(
            f"--- {p.log.name} (rc={p.popen.poll()})\n{p.log_text()[-4000:]}" for p in self.procs
        )


async def wait_until(cond: Callable[[], Awaitable[bool]], within: float, what: str = "condition") -> float:
    started = time.monotonic()
    while True:
        if await cond():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not reached within {within}s")
        await asyncio.sleep(0.1)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = EmbeddedRedis(appendonly=True, workdir=workdir).start()
    out = tmp_path / "out.jsonl"
    (tmp_path / "subscriptions.yaml").write_text(
        "subscriptions:\n"
        "  - id: everything\n"
        "    name: every alert (chaos test)\n"
        f"    channels: ['jsonl://{out}']\n"
        "    filter:\n"
        "      include_non_threats: true\n"
    )
    pl = Pipeline(tmp_path, server, out)
    try:
        yield pl
    finally:
        pl.terminate_all()
        server.cleanup()
