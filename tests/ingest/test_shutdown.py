"""A polling ``vigil run ingest`` process (a real process over a real Redis and a local feed server)
stops on SIGTERM within its stop budget: the feed poller ticks every 10 ms (an ``MGET`` of the feeds'
states each time: the loop that lost its cancellation under load, vigil_shared.cancellation) and six
feeds are polled every second, while retention passes every 50 ms."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from shutdown_support import assert_stopped_cleanly, terminate_within
from vigil_shared.demo import service_process, wait_ready
from vigil_shared.embedded_redis import free_port

pytestmark = pytest.mark.e2e

SHUTDOWN_TIMEOUT_S = 3.0
STOP_WITHIN_S = SHUTDOWN_TIMEOUT_S + 6.0
"""As for notify (tests/notify/test_shutdown.py): well under the 15 s after which compose kills."""


def test_a_polling_ingest_process_stops_on_sigterm_within_its_budget(
    redis_url: str, tmp_path: Path, feed_server: Any, feed_bytes: Any
) -> None:
    body = feed_bytes("embassy-alerts.rss.xml")
    feeds = []
    for i in range(6):
        feed_server.set(f"/f{i}.rss", body, "application/rss+xml", etag=False)
        feeds.append({"name": f"f{i}", "url": feed_server.url(f"/f{i}.rss"), "interval_s": 1})
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(yaml.safe_dump({"defaults": {"timeout_s": 5}, "feeds": feeds}))
    port = free_port()
    env = {
        **os.environ, "REDIS_URL": redis_url, "VIGIL_HTTP_PORT": str(port), "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_INGEST_FEEDS_FILE": str(feeds_file), "VIGIL_INGEST_POLL_TICK_S": "0.01",
        "VIGIL_RETENTION_INTERVAL_S": "0.05", "VIGIL_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        "VIGIL_CONSUMER_NAME": "ingest-stopping",
    }  # fmt: skip
    with service_process("ingest", env, tmp_path) as proc:
        wait_ready(f"http://127.0.0.1:{port}", proc, "ingest", tmp_path)
        deadline = time.monotonic() + 30
        while sum(feed_server.hits.values()) < 12:  # every feed polled twice or so: the poller is busy
            assert time.monotonic() < deadline, f"the feeds were not polled: {feed_server.hits}"
            time.sleep(0.05)
        took = terminate_within(proc, "ingest", STOP_WITHIN_S)
    assert_stopped_cleanly(proc, tmp_path / "ingest.log", took, STOP_WITHIN_S)
