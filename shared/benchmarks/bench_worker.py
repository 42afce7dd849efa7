"""The stream worker alone: CPU per entry of a StreamWorker relaying entries, beside a plain relay.

Run: ``uv run python shared/benchmarks/bench_worker.py [--kind received|classified] [-n 3000]
[--rounds 2] [--batch 200] [--mode worker|direct|relay|decode] [--outputs 3] [--consumers 2]``.

Why: in ``vigil bench`` classify and notify spend CPU in the worker (FastStream's batch path, entry
decode and event validation, the fenced commit, redis-py) on top of their handlers. This isolates
that overhead: the entries are ``vigil bench``'s (``kind=received``: the ``AlertReceived`` entries
classify reads; ``kind=classified``: those texts classified once by the real classifier, the
``AlertClassified`` entries notify reads, made in a child process by notify's benchmark and cached
under the temp directory), written to a stream of a private redis-server before the clock starts.

* ``--mode worker``: a real FastStream broker and :class:`~vigil_shared.worker.StreamWorker` in
  batch mode whose handler is trivial: each event's publication is its input entry's ``__data__``
  unchanged, to an output stream (what the plain relay writes, so the two are comparable).
  ``--outputs N``: notify's shape instead: each event publishes N pre-encoded ``NotificationDelivered``
  entries (``Publication(data=...)``, as notify hands them over; ~3 per alert in ``vigil bench``).
  ``--consumers K``: K workers of the group in one process (notify runs 2: VIGIL_NOTIFY_CONSUMERS).
* ``--mode direct``: the same worker and handler, its ``process`` fed by a bare ``XREADGROUP`` loop
  instead of FastStream's subscriber: the difference to ``worker`` is FastStream's per-batch path.
* ``--mode relay``: :func:`vigil_shared.bench_relay.relay` (the ceiling's hop) on the same entries.
* ``--mode decode``: only the worker's per-entry decode (``decode_body`` + ``parse_event``).

Prints this process's CPU µs per entry (``time.process_time``) and Redis's (``INFO cpu``).
Instruction counts instead of CPU time (steady on a shared machine): ``valgrind --tool=callgrind
--instr-atstart=no --callgrind-out-file=cg.out .venv/bin/python shared/benchmarks/bench_worker.py
--callgrind`` (instrumentation is on for the measured region only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SRC, DST, GROUP = "bench.worker.in", "bench.worker.out", "bench"
NOTIFY_BENCH = Path(__file__).resolve().parents[2] / "services" / "notify" / "benchmarks" / "bench_notify.py"


def received_entries(n: int) -> list[dict[bytes, bytes]]:
    """``vigil bench``'s AlertReceived entries (the stream case's feed)."""
    from vigil_shared.bench import _stream_entries, make_texts

    return [fields for _, fields in _stream_entries(make_texts(n), 0)]


def classified_entries(n: int) -> list[dict[bytes, bytes]]:
    """``vigil bench``'s texts classified by the real classifier, as AlertClassified entries."""
    from vigil_shared.envelope import encode_json
    from vigil_shared.events import AlertClassified

    path = Path(tempfile.gettempdir()) / f"vigil-notify-bench-events-{n}.jsonl"
    if not path.exists():  # notify's benchmark makes (and caches) them in a child process
        print(f"classifying {n} alerts once into {path} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(NOTIFY_BENCH), "--make-events", str(n), str(path)], check=True)
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event = AlertClassified.model_validate_json(line)
        out.append({b"__data__": encode_json(event, line.encode())})
    return out


class GcTimer:
    """CPU time the cyclic GC takes while ``on`` (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0
        self.per_entry = float("nan")
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        elif self.on:
            self.seconds += time.process_time() - self._started


gc_timer = GcTimer()


def redis_cpu_s(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def callgrind(state: str) -> None:
    subprocess.run(["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True)


async def run_worker(
    url: str, kind: str, total: int, data: dict[str, bytes], opts: argparse.Namespace
) -> tuple[float, float]:
    """Relay ``total`` entries through a StreamWorker; returns its CPU seconds and Redis's per entry
    after the first ``opts.warmup`` entries."""
    from vigil_shared.events import AlertClassified, AlertReceived, Event, NotificationDelivered
    from vigil_shared.runtime import make_broker, redis_client
    from vigil_shared.settings import VigilSettings
    from vigil_shared.worker import Publication, StreamWorker

    model: type[Event] = AlertClassified if kind == "classified" else AlertReceived

    if opts.outputs:  # notify's shape: ~3 NotificationDelivered per alert, encoded by the handler
        outs = notification_data(data, opts.outputs)
        template = NotificationDelivered(
            correlation_id="c", producer="notify", alert_id="a", subscription_id="s", channel="x", idempotency_key="k"
        )

        async def handler(events: Sequence[Event]) -> list[list[Publication]]:
            if opts.with_events:  # each publication also holds an event object, as notify's do
                return [[Publication(DST, template.model_copy(), d) for d in outs[e.correlation_id]] for e in events]
            return [[Publication(DST, None, d) for d in outs[e.correlation_id]] for e in events]

    else:

        async def handler(events: Sequence[Event]) -> list[list[Publication]]:
            return [[Publication(DST, None, data[e.correlation_id])] for e in events]

    settings = VigilSettings(
        redis_url=url,
        consumer_name="bench-1",
        batch_size=opts.batch,
        block_ms=100,
        claim_interval_s=3600,
        retention_interval_s=0,
    )
    broker = make_broker(url)
    client = redis_client(url)  # the services' client (vigil_shared.runtime.Host's)
    workers: list[StreamWorker[Any]] = [
        StreamWorker(
            service="bench",
            stream=SRC,
            group=GROUP,
            model=model,
            batch_handler=handler,
            settings=settings,
            consumer=f"bench-{i}",
        )
        for i in range(opts.consumers)
    ]
    direct = opts.mode == "direct"
    for worker in workers:
        if not direct:
            worker.attach(broker)
        await worker.prepare(client)
    if not direct:
        await broker.connect()
    gc.collect()  # as vigil_shared.runtime.Host does before it starts the broker
    gc.freeze()
    if opts.gc_threshold:
        gc.set_threshold(*(int(x) for x in opts.gc_threshold.split(",")))
    readers: list[asyncio.Task[None]] = []
    if direct:
        readers = [asyncio.create_task(read_directly(w, workers, client, opts.batch, total)) for w in workers]
    else:
        await broker.start()
    for worker in workers:
        await worker.start_background(client)

    def consumed() -> int:
        return sum(w.stats.consumed for w in workers)

    # warm-up: the first batches pay one-time costs (imports at the subscriber's start, caches)
    while consumed() < opts.warmup:  # noqa: ASYNC110 - polls the stats, as a benchmark may
        await asyncio.sleep(0.001)
    if opts.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    if opts.callgrind:
        callgrind("on")
    gc_timer.on = True
    first, t0, redis0 = consumed(), time.process_time(), redis_cpu_s(await client.info("cpu"))
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    while consumed() < total:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    cpu = time.process_time() - t0
    system_s = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0
    gc_timer.on = False
    redis_s = redis_cpu_s(await client.info("cpu")) - redis0
    if opts.callgrind:
        callgrind("off")
    if opts.profile:
        profiler.disable()
        profiler.dump_stats(opts.profile)
    measured = consumed() - first
    for worker in workers:
        worker._stopping = True  # no watchdog restart of the subscriber while the broker stops
    if readers:
        await asyncio.gather(*readers)
    else:
        await broker.stop()
    for worker in workers:
        await worker.stop(grace_s=1)
    await client.aclose()
    published = sum(w.stats.published for w in workers)
    deadlettered = sum(w.stats.deadlettered for w in workers)
    if published != total * max(opts.outputs, 1) or deadlettered:
        raise SystemExit(f"workers published {published}, dead-lettered {deadlettered}")
    gc_timer.per_entry = gc_timer.seconds / measured
    system_us = system_s / measured * 1e6
    print(f"(measured {measured} entries; system CPU {system_us:.1f} µs/entry of the process CPU)", file=sys.stderr)
    return cpu / measured, redis_s / measured


def notification_data(data: dict[str, bytes], per_alert: int) -> dict[str, list[bytes]]:
    """Per correlation id, ``per_alert`` encoded ``NotificationDelivered`` entries of the size notify
    publishes for ``vigil bench``'s subscriptions (what notify's handler hands the worker pre-encoded)."""
    from vigil_shared.envelope import encode_data
    from vigil_shared.events import NotificationDelivered

    out: dict[str, list[bytes]] = {}
    for i, cid in enumerate(data):
        out[cid] = [
            encode_data(
                NotificationDelivered(
                    correlation_id=cid,
                    producer="notify",
                    alert_id=f"bench-{i:07d}",
                    subscription_id=f"bench-sub-{k:05d}",
                    channel="jsonl:///tmp/vigil-bench/all.jsonl",
                    idempotency_key=f"{cid}:bench-sub-{k:05d}:{k:064x}",
                    reason="threat types terrorism, crowded_places in FR (Paris); severity Severe >= Moderate",
                )
            )
            for k in range(per_alert)
        ]
    return out


async def read_directly(worker: Any, workers: Sequence[Any], client: Any, count: int, total: int) -> None:
    """``--mode direct``: the worker's :meth:`process` fed by a bare ``XREADGROUP`` loop instead of
    FastStream's subscriber (what FastStream's per-batch path costs is the difference)."""
    from vigil_shared.streams import read_entries

    while sum(w.stats.consumed for w in workers) < total:
        reply = await client.xreadgroup(GROUP, worker.consumer, {SRC: ">"}, count=count, block=100)
        if reply:
            await worker.process(read_entries(reply))


def run_relay(url: str, total: int, opts: argparse.Namespace) -> float:
    from vigil_shared.bench_relay import relay

    if opts.callgrind:
        callgrind("on")
    t0 = time.process_time()
    relay(url, SRC, DST, total, opts.batch)
    cpu = time.process_time() - t0
    if opts.callgrind:
        callgrind("off")
    return cpu


def run_decode(kind: str, entries: Sequence[dict[bytes, bytes]], rounds: int, opts: argparse.Namespace) -> float:
    from vigil_shared.envelope import decode_body
    from vigil_shared.events import AlertClassified, AlertReceived, Event, parse_event

    model: type[Event] = AlertClassified if kind == "classified" else AlertReceived
    if opts.callgrind:
        callgrind("on")
    t0 = time.process_time()
    for _ in range(rounds):
        for fields in entries:
            parse_event(model, decode_body(fields))
    cpu = time.process_time() - t0
    if opts.callgrind:
        callgrind("off")
    return cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=("received", "classified"), default="classified")
    p.add_argument("--mode", choices=("worker", "direct", "relay", "decode"), default="worker")
    p.add_argument("-n", type=int, default=3000, help="distinct entries")
    p.add_argument("--rounds", type=int, default=2, help="each entry is written this many times")
    p.add_argument("--batch", type=int, default=200, help="entries per XREADGROUP (VIGIL_BATCH_SIZE)")
    p.add_argument("--consumers", type=int, default=1, help="workers (consumers of the group) in this process")
    p.add_argument(
        "--outputs",
        type=int,
        default=0,
        help="publications per entry, each a pre-encoded NotificationDelivered (notify: ~3); 0: the input relayed",
    )
    p.add_argument(
        "--with-events",
        action="store_true",
        help="with --outputs: each publication also carries a new NotificationDelivered object, as notify's do",
    )
    p.add_argument("--warmup", type=int, default=400, help="worker mode: entries before the clock starts")
    p.add_argument(
        "--gc-threshold",
        metavar="T0,T1,T2",
        help="gc.set_threshold after the freeze (notify's defaults: 100000,10,100; CPython's: 700,10,10)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", metavar="PATH", help="worker mode: cProfile the measured region into PATH")
    p.add_argument("--callgrind", action="store_true", help="under callgrind: instrument the measured region only")
    opts = p.parse_args()

    import redis as redis_sync
    from vigil_shared.embedded_redis import EmbeddedRedis
    from vigil_shared.envelope import decode_body
    from vigil_shared.events import AlertClassified, AlertReceived

    entries = classified_entries(opts.n) if opts.kind == "classified" else received_entries(opts.n)
    total = len(entries) * opts.rounds
    redis_us = float("nan")
    if opts.mode == "decode":
        cpu = run_decode(opts.kind, entries, opts.rounds, opts) / total
    else:
        model = AlertClassified if opts.kind == "classified" else AlertReceived
        data = {model.model_validate_json(decode_body(f)).correlation_id: f[b"__data__"] for f in entries}
        with EmbeddedRedis() as server:
            client = redis_sync.Redis.from_url(server.url)
            client.xgroup_create(SRC, "relay" if opts.mode == "relay" else GROUP, id="0", mkstream=True)
            for _ in range(opts.rounds):
                for i in range(0, len(entries), 500):
                    pipe = client.pipeline(transaction=False)
                    for fields in entries[i : i + 500]:
                        pipe.xadd(SRC, fields)  # type: ignore[arg-type]
                    pipe.execute()
            if opts.mode == "relay":
                before = redis_cpu_s(client.info("cpu"))
                cpu = run_relay(server.url, total, opts) / total
                redis_us = (redis_cpu_s(client.info("cpu")) - before) / total * 1e6
            else:
                cpu, redis_s = asyncio.run(run_worker(server.url, opts.kind, total, data, opts))
                redis_us = redis_s * 1e6
            expected = total if opts.mode == "relay" else total * max(opts.outputs, 1)
            if int(client.xlen(DST)) != expected:
                raise SystemExit(f"{DST} has {client.xlen(DST)} entries, expected {expected}")
            client.close()
    out = {
        "mode": opts.mode,
        "kind": opts.kind,
        "entries": total,
        "cpu_us_per_entry": cpu * 1e6,
        "redis_cpu_us_per_entry": redis_us,
        "gc_us_per_entry": gc_timer.per_entry * 1e6,
    }
    if opts.json:
        print(json.dumps(out))
    else:
        print(
            f"{opts.mode} {opts.kind}: {total} entries, process CPU {out['cpu_us_per_entry']:.1f} µs/entry, "
            f"Redis CPU {redis_us:.1f} µs/entry, GC {out['gc_us_per_entry']:.1f} µs/entry (worker mode)"
        )


if __name__ == "__main__":
    main()
