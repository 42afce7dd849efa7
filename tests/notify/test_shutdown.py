"""A busy ``vigil run notify`` process (a real process over a real Redis) stops on SIGTERM within its
stop budget: every loop that awaits Redis in a tick (the consumers, claim loops, watchdogs, notify's
housekeeping, retention) ticking many times a second while alerts keep arriving, so a cancellation
landing inside a Redis call (where redis-py can lose it, vigil_shared.cancellation) is likely."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import redis as redis_sync
from shutdown_support import assert_stopped_cleanly, terminate_within
from vigil_shared import streams
from vigil_shared.demo import service_process, wait_ready
from vigil_shared.envelope import encode_event_sync

from .helpers import free_port, make_alert, write_catch_all

pytestmark = pytest.mark.e2e

SHUTDOWN_TIMEOUT_S = 3.0
"""VIGIL_SHUTDOWN_TIMEOUT_S of the process: the broker's and the workers' share of the stop."""
STOP_WITHIN_S = SHUTDOWN_TIMEOUT_S + 6.0
"""Host.stop: the budget, then the on-stop callbacks (2 s each at most) and the background loops
(3 s at most); well under the 15 s after which compose (and service_process) kill the process."""


def test_a_busy_notify_process_stops_on_sigterm_within_its_budget(redis_url: str, tmp_path: Path) -> None:
    subs, out = write_catch_all(tmp_path)
    client = redis_sync.Redis.from_url(redis_url)
    port = free_port()
    env = {
        **os.environ, "REDIS_URL": redis_url, "VIGIL_HTTP_PORT": str(port), "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs), "VIGIL_NOTIFY_THROTTLE_MAX": "1000000",
        "VIGIL_CONSUMER_NAME": "notify-stopping", "VIGIL_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        # every helper loop ticks (and awaits Redis) many times a second
        "VIGIL_NOTIFY_HOUSEKEEPING_INTERVAL_S": "0.01", "VIGIL_CLAIM_INTERVAL_S": "0.05",
        "VIGIL_RETENTION_INTERVAL_S": "0.05", "VIGIL_BLOCK_MS": "50",
    }  # fmt: skip
    feeding = threading.Event()
    written = 0

    def feed() -> None:  # bounded: at most 6,000 alerts or 30 s
        nonlocal written
        feeder = redis_sync.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        while feeding.is_set() and written < 6000 and time.monotonic() < deadline:
            pipe = feeder.pipeline(transaction=False)
            for i in range(written, written + 50):
                alert = make_alert(alert_id=f"s-{i:05d}", text=f"Threats to metro stations in Moscow, notice {i}.")
                pipe.xadd(streams.ALERTS_CLASSIFIED, encode_event_sync(alert))  # type: ignore[arg-type]
            pipe.execute()
            written += 50
            time.sleep(0.02)
        feeder.close()

    feeder = threading.Thread(target=feed, daemon=True)
    with service_process("notify", env, tmp_path) as proc:
        wait_ready(f"http://127.0.0.1:{port}", proc, "notify", tmp_path)
        feeding.set()
        feeder.start()
        try:
            deadline = time.monotonic() + 30
            while not (out.exists() and len(out.read_text().splitlines()) >= 200):  # busy delivering
                assert time.monotonic() < deadline, "notify never delivered"
                time.sleep(0.05)
            took = terminate_within(proc, "notify", STOP_WITHIN_S)
        finally:
            feeding.clear()
            feeder.join(10)
    # no loop ran on after its cancellation (Host.stop would have waited 3 s for it and named it)
    assert_stopped_cleanly(proc, tmp_path / "notify.log", took, STOP_WITHIN_S)
    client.close()
