"""A real ``vigil run capfeed`` process: JSON log lines carry the alert's ids; probes answer over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.embedded_redis import free_port
from vigil_shared.events import AlertClassified, AlertReceived, Classification, LabelScore
from vigil_shared.worker import Publication, publish_events

pytestmark = pytest.mark.e2e


def classified(alert_id: str) -> AlertClassified:
    alert = AlertReceived(
        correlation_id=f"corr-{alert_id}",
        producer="ingest",
        alert_id=alert_id,
        source_kind="api",
        source_name="t",
        title="Bomb threat",
        text="Bomb threat at the station",
    )
    cls = Classification(
        id=alert_id,
        is_threat=True,
        threat_types=(LabelScore(type="terrorism", confidence=0.9),),
        countries=("RU",),
        classifier_version="t",
    )
    return AlertClassified(
        correlation_id=alert.correlation_id, producer="classify", alert=alert, classification=cls
    )


async def test_json_logs_of_an_alert_carry_correlation_and_alert_id(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VIGIL_HTTP_PORT": str(port),
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_BLOCK_MS": "50",
    }
    stderr = (tmp_path / "stderr.log").open("w+b")
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, not awaited
        [sys.executable, "-m", "vigil_shared.cli", "run", "capfeed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=tmp_path,
    )
    redis = Redis.from_url(redis_url)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, "capfeed exited"
                assert time.monotonic() < deadline, "capfeed never became ready"
                await asyncio.sleep(0.1)
            await publish_events(redis, [Publication(streams.ALERTS_CLASSIFIED, classified("p1"))], 10_000)
            while (await client.get("/cap/p1.xml")).status_code != 200:
                assert time.monotonic() < deadline + 10, "alert never reached the feed"
                await asyncio.sleep(0.1)
            assert (await client.get("/healthz")).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert 'vigil_events_consumed_total{group="capfeed",stream="vigil.alerts.classified"}' in metrics
            assert 'vigil_capfeed_alerts_total{outcome="stored"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        await redis.aclose()
    stderr.seek(0)
    lines = [json.loads(raw) for raw in stderr.read().decode().splitlines() if raw.startswith("{")]
    assert proc.returncode == 0
    stored = [ln for ln in lines if ln.get("event") == "alert stored for the CAP feed"]
    assert stored, lines
    assert stored[0]["correlation_id"] == "corr-p1"
    assert stored[0]["alert_id"] == "p1"
    assert stored[0]["service"] == "capfeed"
    assert all("timestamp" in ln and "level" in ln for ln in lines)
