"""/healthz, /readyz and /metrics of the per-process HTTP app, against a real Redis and a real worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
import structlog
from faststream.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from vigil_shared.embedded_redis import EmbeddedRedis
from vigil_shared.events import AlertReceived
from vigil_shared.health import build_http_app
from vigil_shared.runtime import make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, StreamWorker, publish_events

IN, OUT, GROUP = "ops.in", "ops.out", "opsgroup"
log = structlog.get_logger("tests.ops")


def alert(n: int, text: str = "ok") -> AlertReceived:
    return AlertReceived(
        correlation_id=f"corr-{n}",
        producer="test",
        alert_id=f"al_{n}",
        source_kind="api",
        source_name="t",
        title=f"t{n}",
        text=text,
    )


async def relay(event: AlertReceived) -> Sequence[Publication]:
    log.info("handling alert in the test handler")
    if event.text == "boom":
        raise RuntimeError("boom")
    return [Publication(OUT, event)]


async def eventually(cond: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Proc:
    """One worker + its HTTP app, wired the way the runtime's Host wires them."""

    def __init__(self, url: str, grace: float) -> None:
        self.settings = VigilSettings(
            redis_url=url,
            consumer_name="ops-1",
            block_ms=50,
            claim_interval_s=0.2,
            claim_idle_ms=300,
            max_deliveries=2,
        )
        self.redis = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.broker: RedisBroker = make_broker(url)
        self.worker = StreamWorker(
            service="ops", stream=IN, group=GROUP, model=AlertReceived, handler=relay, settings=self.settings
        )
        self.grace = grace

    async def start(self) -> httpx.AsyncClient:
        self.worker.attach(self.broker)
        await self.worker.prepare(self.redis)
        await self.broker.start()
        await self.worker.start_background(self.redis)
        app = build_http_app(
            title="ops",
            routers=[],
            redis=self.redis,
            workers=[self.worker],
            background=[],
            liveness_grace_s=self.grace,
        )
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops")
        return self.client

    async def stop(self) -> None:
        await self.client.aclose()
        await self.worker.stop()
        with_timeout = asyncio.wait_for(self.broker.stop(), timeout=5)
        with contextlib.suppress(Exception):
            await with_timeout
        await self.redis.aclose()


@pytest.fixture
async def proc(redis_url: str) -> AsyncIterator[Proc]:
    p = Proc(redis_url, grace=0.5)
    await p.start()
    yield p
    await p.stop()


async def status(client: httpx.AsyncClient, path: str) -> tuple[int, dict[str, Any]]:
    r = await client.get(path)
    return r.status_code, r.json()


async def test_healthy_process_is_live_and_ready(proc: Proc) -> None:
    assert await status(proc.client, "/healthz") == (200, {"status": "ok", "problems": []})
    assert await status(proc.client, "/readyz") == (200, {"status": "ok", "problems": []})


async def test_liveness_fails_when_the_consume_loop_died_and_is_not_restarted(
    proc: Proc, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = proc.worker._subscriber

    async def cannot_start(*_: Any) -> None:
        raise RuntimeError("wedged")

    await sub.stop()  # the consume loop is gone...
    monkeypatch.setattr(sub, "start", cannot_start)  # ...and the watchdog cannot bring it back
    code, body = await status(proc.client, "/readyz")
    assert code == 503
    assert any("consume loop stopped" in p for p in body["problems"])
    # within the grace period the watchdog gets its chance: still live
    assert (await status(proc.client, "/healthz"))[0] == 200
    await asyncio.sleep(0.6)
    code, body = await status(proc.client, "/healthz")
    assert code == 503, body
    assert any("consume loop stopped" in p and "not restarted" in p for p in body["problems"])
    metrics = (await proc.client.get("/metrics")).text
    assert f'vigil_consume_loop_up{{group="{GROUP}",stream="{IN}"}} 0.0' in metrics


async def test_a_consume_loop_the_watchdog_restarts_never_fails_liveness(proc: Proc) -> None:
    await proc.redis.delete(IN)  # NOGROUP: FastStream stops the subscriber, the watchdog recreates it
    await publish_events(proc.redis, [Publication(IN, alert(1))], 10_000)
    await eventually(lambda: _exists(proc.redis, OUT), within=15)
    assert (await status(proc.client, "/healthz"))[0] == 200
    await eventually(lambda: _ready(proc.client), within=15)


async def _exists(redis: Redis, key: str) -> bool:
    return bool(await redis.exists(key))


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_readiness_reports_a_missing_group(proc: Proc) -> None:
    await proc.redis.xgroup_destroy(IN, GROUP)
    code, body = await status(proc.client, "/readyz")
    assert code == 503
    assert f"group {GROUP} missing on {IN}" in body["problems"]


async def test_redis_down_fails_readiness_not_liveness() -> None:
    server = EmbeddedRedis().start()
    p = Proc(server.url, grace=0.5)
    try:
        await p.start()
        assert (await status(p.client, "/readyz"))[0] == 200
        server.stop()
        code, body = await status(p.client, "/readyz")
        assert code == 503
        assert body["problems"][0].startswith("redis unreachable")
        await asyncio.sleep(0.7)  # longer than the grace: the consume loop keeps retrying, it did not die
        assert (await status(p.client, "/healthz"))[0] == 200
        assert (await p.client.get("/metrics")).status_code == 200  # metrics survive a Redis outage
    finally:
        await p.stop()
        server.cleanup()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def test_metrics_cover_the_pipeline(proc: Proc) -> None:
    before = samples((await proc.client.get("/metrics")).text)
    await publish_events(proc.redis, [Publication(IN, alert(i)) for i in range(5)], 10_000)
    await publish_events(proc.redis, [Publication(IN, alert(99, "boom"))], 10_000)
    await proc.redis.xadd(IN, {"garbage": "1"})
    await eventually(lambda: _len(proc.redis, OUT, 5))
    await eventually(lambda: _len(proc.redis, "vigil.deadletter", 2), within=15)
    r = await proc.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    sg = {"stream": IN, "group": GROUP}
    assert delta("vigil_events_consumed_total", **sg) >= 7
    assert delta("vigil_events_published_total", stream=OUT) == 5
    assert delta("vigil_events_failed_total", **sg) >= 1
    assert delta("vigil_events_deadlettered_total", **sg) == 2
    assert delta("vigil_handler_seconds_count", **sg, outcome="ok") == 5
    assert delta("vigil_handler_seconds_count", **sg, outcome="error") >= 1
    assert delta("vigil_batch_seconds_count", **sg) >= 1
    assert after[("vigil_group_pending", frozenset(sg.items()))] == 0
    if int(str((await proc.redis.info())["redis_version"]).split(".")[0]) >= 7:  # XINFO GROUPS has lag
        assert after[("vigil_group_lag", frozenset(sg.items()))] == 0
    assert after[("vigil_stream_length", frozenset({("stream", IN)}))] == 7
    assert after[("vigil_consume_loop_up", frozenset(sg.items()))] == 1
    # families owned by other services exist in every process, so dashboards never miss a series name
    names = {fam.name for fam in text_string_to_metric_families(r.text)}
    assert {"vigil_deliveries", "vigil_feed_polls", "vigil_alerts_ingested"} <= names


async def _len(redis: Redis, stream: str, n: int) -> bool:
    return bool(await redis.exists(stream)) and int(await redis.xlen(stream)) >= n


async def test_lines_logged_while_handling_carry_correlation_and_alert_ids(proc: Proc) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await publish_events(proc.redis, [Publication(IN, alert(7))], 10_000)
        await eventually(lambda: _len(proc.redis, OUT, 1))
    handled = [e for e in logs if e["event"] == "handling alert in the test handler"]
    assert handled
    assert handled[0]["correlation_id"] == "corr-7"
    assert handled[0]["alert_id"] == "al_7"
