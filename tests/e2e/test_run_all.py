"""`vigil run all`: every installed service in one process, for local use."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from vigil_shared.demo import service_process, wait_ready
from vigil_shared.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_run_all_hosts_the_whole_pipeline_in_one_process(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "VIGIL_HTTP_PORT": str(port), "VIGIL_HTTP_HOST": "127.0.0.1",
           "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(ROOT / "examples" / "subscriptions.yaml")}
    with service_process("all", env, tmp_path) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, "all", tmp_path)
        alert = json.loads((ROOT / "examples" / "alerts" / "01-moscow.json").read_text())
        r = httpx.post(f"{base}/v1/alerts", json=alert, timeout=10)
        assert r.status_code == 202, r.text
        out = tmp_path / "notifications.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.2)
        time.sleep(0.5)
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert {x["subscription_id"] for x in lines} >= {"moscow-traveller", "near-moscow"}
        assert all(x["alert_id"] == r.json()["alert_id"] for x in lines)
    assert proc.returncode == 0, (tmp_path / "all.log").read_text()[-2000:]
