"""classify's CPU per alert in isolation (not collected by pytest; run it by hand):

    uv run python tests/shared/bench_classify_worker.py [N]

One in-process classify service (its ``build()`` and ``StreamWorker`` on a real broker) against a
private ``redis-server``; N bench alerts (``vigil_shared.bench.make_texts``) are written first, then
the process CPU time (``time.process_time``) is taken from the broker's start until the worker has
consumed all N; then, in a fresh process (the classifier's caches cold again, as for the service),
the classifier alone (``classify_payload`` on the same alerts) for comparison.
Unlike ``vigil bench`` it measures no other service, so it is far less sensitive to the load other
processes put on the machine (CPU time is still inflated a little on a busy machine: interleave A/B).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from redis.asyncio import Redis
from vigil_classify.engine import Classifier
from vigil_classify.service import SERVICE
from vigil_shared import streams
from vigil_shared.bench import _alert, make_texts
from vigil_shared.embedded_redis import EmbeddedRedis
from vigil_shared.runtime import ServiceContext, make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, publish_events


async def run(url: str, n: int) -> float:
    settings = VigilSettings(redis_url=url, consumer_name="bench", retention_interval_s=0, log_level="WARNING")
    redis = Redis.from_url(url)
    alerts = [_alert(i, t, x) for i, (t, x) in enumerate(make_texts(n))]
    for i in range(0, n, 500):
        await publish_events(redis, [Publication(streams.ALERTS_RECEIVED, a) for a in alerts[i : i + 500]])
    broker = make_broker(url)
    parts = await SERVICE.build(ServiceContext(settings, redis, broker))
    (worker,) = parts.workers
    worker.attach(broker)
    await worker.prepare(redis)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await broker.start()
    await worker.start_background(redis)
    while worker.stats.consumed < n:  # noqa: ASYNC110 - polling the worker's counter is the point
        await asyncio.sleep(0.02)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert await redis.xlen(streams.ALERTS_CLASSIFIED) == n
    await worker.stop()
    await broker.stop()
    await redis.aclose()
    print(f"{n} alerts: classify service {1000 * cpu / n:.3f} CPU-ms/alert ({n / wall:,.0f} alerts/s wall)")
    return cpu / n


def classifier_alone(n: int) -> float:
    alerts = [_alert(i, t, x) for i, (t, x) in enumerate(make_texts(n))]
    classifier = Classifier()
    c0 = time.process_time()
    for a in alerts:
        classifier.classify_payload(a.text, title=a.title, issuer=a.issuer, alert_id=a.alert_id)
    return (time.process_time() - c0) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    if sys.argv[2:] == ["--classifier-only"]:
        print(f"{classifier_alone(n) * 1000:.6f}")
        return
    server = EmbeddedRedis().start()
    try:
        per_alert = asyncio.run(run(server.url, n))
    finally:
        server.cleanup()
    out = subprocess.run(
        [sys.executable, __file__, str(n), "--classifier-only"], check=True, capture_output=True, text=True
    )
    alone = float(out.stdout.split()[-1])
    print(
        f"  classifier alone {alone:.3f} CPU-ms/alert; the rest (stream I/O, validation, events) "
        f"{per_alert * 1000 - alone:.3f}"
    )


if __name__ == "__main__":
    main()
