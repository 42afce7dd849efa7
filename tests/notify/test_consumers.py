"""VIGIL_NOTIFY_CONSUMERS: several consumers of the group in one notify process (a real process over a
real Redis) share the work and deliver every alert exactly once, as that many replicas would."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import redis as redis_sync
from vigil_notify.settings import NotifySettings
from vigil_shared import streams
from vigil_shared.demo import service_process, wait_ready
from vigil_shared.envelope import encode_event_sync

from .helpers import free_port, make_alert, write_catch_all

pytestmark = pytest.mark.e2e


def test_default_is_two_consumers_per_process() -> None:
    assert NotifySettings().consumers == 2


def test_two_consumers_in_one_process_split_the_group_and_deliver_each_alert_once(
    redis_url: str, tmp_path: Path
) -> None:
    subs, out = write_catch_all(tmp_path)
    client = redis_sync.Redis.from_url(redis_url)
    client.flushall()
    port = free_port()
    env = {
        **os.environ, "REDIS_URL": redis_url, "VIGIL_HTTP_PORT": str(port), "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs), "VIGIL_NOTIFY_CONSUMERS": "2",
        "VIGIL_CONSUMER_NAME": "notify-under-test", "VIGIL_NOTIFY_THROTTLE_MAX": "1000000",
    }  # fmt: skip
    n = 1200
    with service_process("notify", env, tmp_path) as proc:
        wait_ready(f"http://127.0.0.1:{port}", proc, "notify", tmp_path)
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            alert = make_alert(alert_id=f"a-{i:05d}", text=f"Threats to metro stations in Moscow, notice {i}.")
            pipe.xadd(streams.ALERTS_CLASSIFIED, encode_event_sync(alert))  # type: ignore[arg-type]
        pipe.execute()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = out.read_text().splitlines() if out.exists() else []
            if len(lines) >= n:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # a duplicate would arrive after the last first delivery
        group_consumers = client.xinfo_consumers(streams.ALERTS_CLASSIFIED, streams.GROUP_NOTIFY)
        consumers = {c["name"].decode(): c for c in group_consumers}
        groups = {g["name"].decode(): g for g in client.xinfo_groups(streams.ALERTS_CLASSIFIED)}
    ids = [json.loads(line)["alert_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == [f"a-{i:05d}" for i in range(n)], "every alert exactly once"
    # both consumers of the process read from the group (a consumer exists once it has read)
    assert {"notify-under-test-0", "notify-under-test-1"} <= set(consumers)
    assert groups[streams.GROUP_NOTIFY]["pending"] == 0
