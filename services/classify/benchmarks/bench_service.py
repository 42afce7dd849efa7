"""classify's overhead per alert in isolation: the service's process CPU and Redis's CPU, per alert.

    uv run python services/classify/benchmarks/bench_service.py [-n N] [--repeat R] [--no-alone]

One in-process classify service, hosted by the runtime's own ``Host`` (its ``build()``, ``gc.freeze``,
``StreamWorker`` on a real FastStream broker, claim loop and watchdog; no HTTP), against a private
``redis-server`` (never a shared one). N alerts made by ``vigil_shared.bench.make_texts`` wait in a
staging stream with classify's group on it, renamed to ``vigil.alerts.received`` once the service is
up; from the rename until the worker has consumed all N (not the fill, not the start-up):

* the process CPU time (``time.process_time``) per alert;
* Redis's CPU time (``INFO cpu``: ``used_cpu_sys`` + ``used_cpu_user``) per alert, and the commands it
  ran in that window (``INFO commandstats``: calls and CPU µs per call, per command);

then, in a fresh process (the classifier's caches cold, as in the service), the classifier alone
(``classify_payload`` on the same alerts): the difference is the worker/service overhead.
``--repeat R`` runs the service part R times (a fresh Redis each time) and reports each run and the
median. CPU time, not wall time, is the cost on a shared machine; a busy machine still inflates it a
little, so interleave A/B runs.

Instruction counts of the consuming part alone (stable on a busy machine, unlike CPU time)::

    VIGIL_BENCH_CALLGRIND=1 uv run valgrind --tool=callgrind --instr-atstart=no \\
        --callgrind-out-file=cg.out python services/classify/benchmarks/bench_service.py -n 2000 --no-alone
    callgrind_annotate cg.out | head

Profile: ``uv run py-spy record -f raw -o classify.txt -- python services/classify/benchmarks/bench_service.py
--no-alone``; imports, the fill and the start-up are in the profile too (under ``run_service``): the
consumption is under ``_StreamHandlerMixin._consume`` (and ``_claim_loop``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.bench import _alert, make_texts
from vigil_shared.embedded_redis import EmbeddedRedis
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, publish_events


@dataclass
class Run:
    n: int
    process_cpu_s: float
    redis_cpu_s: float
    wall_s: float
    commands: dict[str, tuple[int, float]]  # command -> (calls, usec)

    @property
    def process_us(self) -> float:
        return 1e6 * self.process_cpu_s / self.n

    @property
    def redis_us(self) -> float:
        return 1e6 * self.redis_cpu_s / self.n


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _commandstats(redis: Redis) -> dict[str, tuple[int, float]]:
    raw: dict[str, Any] = await redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"])) for k, v in raw.items()}


STAGING = "bench.staging"


async def fill(redis: Redis, stream: str, n: int) -> None:
    alerts = [_alert(i, t, x) for i, (t, x) in enumerate(make_texts(n))]
    for i in range(0, n, 500):
        await publish_events(redis, [Publication(stream, a) for a in alerts[i : i + 500]])


async def run_service(url: str, n: int, batch_size: int | None) -> Run:
    from vigil_classify.service import SERVICE
    from vigil_shared.runtime import Host

    extra: dict[str, Any] = {"batch_size": batch_size} if batch_size else {}
    settings = VigilSettings(
        redis_url=url, consumer_name="bench", retention_interval_s=0, http_port=0, log_level="WARNING", **extra
    )
    redis = Redis.from_url(url)
    # the alerts wait in a staging stream with classify's group on it, renamed into place once the
    # service is up: the measurement covers consumption only (not the fill, nor the start-up)
    await fill(redis, STAGING, n)
    await redis.xgroup_create(STAGING, streams.GROUP_CLASSIFY, id="0")
    host = Host([SERVICE], settings)  # the runtime's own host (gc.freeze, claim loop, watchdog), no HTTP
    await host.start()
    (worker,) = host.workers
    await redis.config_resetstat()
    redis_cpu0 = await _redis_cpu(redis)
    _callgrind("on")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await redis.rename(STAGING, streams.ALERTS_RECEIVED)
    while worker.stats.consumed < n:  # noqa: ASYNC110 - polling the worker's counter is the point
        await asyncio.sleep(0.02)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    _callgrind("off")
    redis_cpu = await _redis_cpu(redis) - redis_cpu0
    commands = await _commandstats(redis)
    assert await redis.xlen(streams.ALERTS_CLASSIFIED) == n
    pending = await redis.xpending(streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY)
    assert pending["pending"] == 0, pending
    await host.stop()
    await redis.aclose()
    return Run(n, cpu, redis_cpu, wall, commands)


def _callgrind(state: str) -> None:
    """Under ``valgrind --tool=callgrind --instr-atstart=no``: count instructions only while consuming."""
    if os.environ.get("VIGIL_BENCH_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def classifier_alone(n: int) -> float:
    from vigil_classify.engine import Classifier

    alerts = [_alert(i, t, x) for i, (t, x) in enumerate(make_texts(n))]
    classifier = Classifier()
    c0 = time.process_time()
    for a in alerts:
        classifier.classify_payload(a.text, title=a.title, issuer=a.issuer, alert_id=a.alert_id)
    return (time.process_time() - c0) / n


def one_run(n: int, batch_size: int | None) -> Run:
    server = EmbeddedRedis().start()
    try:
        return asyncio.run(run_service(server.url, n, batch_size))
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="alerts (default 20,000)")
    parser.add_argument("--repeat", type=int, default=1, help="service runs (fresh Redis each)")
    parser.add_argument("--batch-size", type=int, default=None, help="VIGIL_BATCH_SIZE (default: the setting's)")
    parser.add_argument("--no-alone", action="store_true", help="skip the classifier-alone run")
    parser.add_argument("--commands", action="store_true", help="print Redis's commandstats of the last run")
    parser.add_argument("--classifier-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.n
    if args.classifier_only:
        print(f"{classifier_alone(n) * 1e6:.3f}")
        return
    runs = []
    for i in range(args.repeat):
        r = one_run(n, args.batch_size)
        runs.append(r)
        print(
            f"run {i + 1}: {n} alerts: classify process {r.process_us:.1f} CPU-us/alert, "
            f"Redis {r.redis_us:.1f} CPU-us/alert ({n / r.wall_s:,.0f} alerts/s wall)",
            flush=True,
        )
    from vigil_classify import native

    print(f"classifier modules: {'native (compiled)' if native.active() else 'pure Python'}")
    proc = statistics.median(r.process_us for r in runs)
    red = statistics.median(r.redis_us for r in runs)
    print(f"median: classify process {proc:.1f} CPU-us/alert, Redis {red:.1f} CPU-us/alert")
    if args.commands:
        print("Redis commands in the last run (calls, CPU-us per call, CPU-us per alert):")
        for name, (calls, usec) in sorted(runs[-1].commands.items(), key=lambda kv: -kv[1][1]):
            print(f"  {name:<14} {calls:>8} {usec / calls:>10.1f} {usec / n:>8.2f}")
    if not args.no_alone:
        out = subprocess.run(
            [sys.executable, __file__, "-n", str(n), "--classifier-only"], check=True, capture_output=True, text=True
        )
        alone = float(out.stdout.split()[-1])
        print(f"classifier alone {alone:.1f} CPU-us/alert; the rest (stream I/O, decode, events) {proc - alone:.1f}")


if __name__ == "__main__":
    main()
