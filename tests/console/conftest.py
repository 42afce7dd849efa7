"""A real pipeline (ingest, classify, notify, console as OS processes over a real Redis) and a real
headless Chromium (Debian's ``chromium`` package driven by Playwright; no browser download)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from vigil_shared.demo import service_process, wait_ready
from vigil_shared.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VIGIL_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN_KEY = "vigil_console-test-admin-key-0123456789"
ADMIN_HASH = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
# the committed screenshots are refreshed with VIGIL_UPDATE_SCREENSHOTS=1 (a plain test run leaves
# the work tree clean and writes them to a temporary folder)
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("VIGIL_UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "vigil-console-screenshots"
)


@dataclass
class Pipeline:
    redis_url: str
    ingest: str
    notify: str
    console: str
    workdir: Path

    def send(self, alert: dict[str, object]) -> dict[str, object]:
        r = httpx.post(f"{self.ingest}/v1/alerts", json=alert, timeout=10,
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pipeline(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    client = redis_sync.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    workdir = tmp_path_factory.mktemp("console-pipeline")  # service logs stay there for a failed run
    subs = workdir / "subscriptions.yaml"
    subs.write_text((ROOT / "examples" / "subscriptions.yaml").read_text())
    ports = {name: free_port() for name in ("ingest", "classify", "notify", "console")}
    env_base = {
        **os.environ, "REDIS_URL": redis_server_url, "VIGIL_LOG_FORMAT": "json", "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs),
        # Vigil's API keys (vigil_shared.auth) and the console's fallback check: the same admin key
        "VIGIL_API_KEYS": f"console-test:admin:{ADMIN_HASH}",
        "VIGIL_AUTH_DISABLED": "false",  # tests/conftest.py switches auth off by default; the console needs it
        "VIGIL_CONSOLE_ADMIN_KEY_SHA256": ADMIN_HASH,
        "VIGIL_CONSOLE_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
        "VIGIL_CONSOLE_STREAM_BLOCK_MS": "1000",
    }  # fmt: skip
    with ExitStack() as stack:
        procs = {}
        for name, port in ports.items():
            env = {**env_base, "VIGIL_HTTP_PORT": str(port)}
            procs[name] = stack.enter_context(service_process(name, env, workdir))
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc, name, workdir, timeout=90)
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        yield Pipeline(redis_server_url, base["ingest"], base["notify"], base["console"], workdir)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (make browser installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
            ],  # Playwright itself gives every launch a fresh temporary --user-data-dir
        )  # fmt: skip
        try:
            yield b
        finally:
            b.close()
