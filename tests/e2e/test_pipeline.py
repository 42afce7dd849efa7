"""End to end: ingest, classify and notify as three OS processes over a real Redis."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from vigil_shared import streams
from vigil_shared.demo import pipeline_drained, service_process, wait_ready
from vigil_shared.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    subs = tmp_path / "subscriptions.yaml"
    subs.write_text((ROOT / "examples" / "subscriptions.yaml").read_text())
    env_base = {**os.environ, "REDIS_URL": redis_url, "VIGIL_LOG_FORMAT": "json",
                "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs), "VIGIL_HTTP_HOST": "127.0.0.1"}
    with ExitStack() as stack:
        ports = {}
        procs = {}
        for name in ("ingest", "classify", "notify"):
            ports[name] = free_port()
            env = {**env_base, "VIGIL_HTTP_PORT": str(ports[name])}
            procs[name] = stack.enter_context(service_process(name, env, tmp_path))
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc, name, tmp_path)
        yield f"http://127.0.0.1:{ports['ingest']}", tmp_path


def wait_drained(redis_url: str, timeout: float = 60) -> None:
    client = redis_sync.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipeline_drained(client):
            return
        time.sleep(0.2)
    raise AssertionError("pipeline did not drain")


def test_an_alert_crosses_all_three_processes(pipeline: tuple[str, Path], redis_url: str) -> None:
    ingest, workdir = pipeline
    sent = {}
    for path in sorted((ROOT / "examples" / "alerts").glob("*.json")):
        r = httpx.post(f"{ingest}/v1/alerts", json=json.loads(path.read_text()), timeout=10)
        assert r.status_code == 202, r.text
        sent[path.stem] = r.json()
    # the same alert again is a duplicate and is not published twice
    again = httpx.post(f"{ingest}/v1/alerts", json=json.loads((ROOT / "examples/alerts/01-moscow.json").read_text()))
    assert again.json()["status"] == "duplicate"
    assert again.json()["alert_id"] == sent["01-moscow"]["alert_id"]

    wait_drained(redis_url)
    lines = [json.loads(x) for x in (workdir / "notifications.jsonl").read_text().splitlines()]
    by_alert: dict[str, set[str]] = {}
    for line in lines:
        by_alert.setdefault(line["alert_id"], set()).add(line["subscription_id"])

    moscow = sent["01-moscow"]["alert_id"]
    assert {"moscow-traveller", "near-moscow", "security-desk"} <= by_alert[moscow]
    assert "spb-only" not in by_alert[moscow]
    assert "istanbul-desk" not in by_alert[moscow]
    moscow_line = next(x for x in lines if x["alert_id"] == moscow and x["subscription_id"] == "moscow-traveller")
    assert any("Moscow" in str(p) for p in moscow_line["places"])
    assert "terrorism" in moscow_line["threat_types"]
    assert moscow_line["correlation_id"] == sent["01-moscow"]["correlation_id"]

    assert "istanbul-desk" in by_alert[sent["02-istanbul"]["alert_id"]]
    assert "quakes" in by_alert[sent["03-hatay-quake"]["alert_id"]]
    assert sent["04-routine"]["alert_id"] not in by_alert, "a routine consular notice is not a threat"
    # each (alert, subscription, channel) exactly once
    keys = [(x["alert_id"], x["subscription_id"]) for x in lines]
    assert len(keys) == len(set(keys))
    # every delivery is recorded on the notifications stream
    client = redis_sync.Redis.from_url(redis_url)
    assert int(client.xlen(streams.NOTIFICATIONS)) >= len(lines)
