"""notify alone: CPU per classified alert through the Notifier, against a private Redis.

Run: ``uv run python services/notify/benchmarks/bench_notify.py [-n 3000] [--subs 10000]
[--batch 200] [--mode batch|single] [--rounds 1]``.

The alerts are ``vigil bench``'s generated texts classified once by the real classifier (in a
child process, cached under the temp directory, so the classifier is never imported here); the
subscriptions are ``vigil bench``'s (1 catch-all JSONL + ``--subs`` others), loaded through the
YAML sync like the service does. Each read batch (``--batch``) goes through
``Notifier.process_many`` (``--mode batch``: what the batch handler does) or through
``Notifier.process`` per alert, ``alert_concurrency`` at a time (``--mode single``: the per-event
handler), each entry decoded by the service's parse hook (:func:`~vigil_notify.classified.decode_classified`),
and the outputs are encoded as the stream worker would (the service's publications: their ``data`` when
notify encoded it, else ``encode_data`` of the event).

Instruction counts of the timed loop alone (steadier than CPU time on a shared machine):
``valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out .venv/bin/python
services/notify/benchmarks/bench_notify.py --callgrind`` then ``callgrind_annotate cg.out | head``.

Each run's alerts are new only once: ``--rounds`` > 1 gives later rounds new alert ids but the same
texts, which the content dedup then holds back (no deliveries): use ``-n`` for more alerts.

Real cycles of the timed loop (cache misses included, which instruction counts miss): ``mkfifo ctl;
perf record -D -1 --control fifo:ctl -o perf.data -- .venv/bin/python
services/notify/benchmarks/bench_notify.py --perf-ctl ctl`` then ``perf report -i perf.data``.

Prints CPU µs per alert of this process (``time.process_time``; the subscription load and index
are done before the clock starts), Redis CPU per alert, deliveries per alert, and peak RSS.
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
from collections import Counter
from pathlib import Path
from typing import Any

from vigil_shared.events import AlertClassified


def make_events(n: int, path: Path) -> None:
    """Classify ``vigil bench``'s texts (runs in a child process: imports the classifier)."""
    from vigil_classify.engine import Classifier
    from vigil_shared.bench import make_texts
    from vigil_shared.events import AlertReceived

    clf = Classifier()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for i, (title, text) in enumerate(make_texts(n)):
            alert = AlertReceived(
                correlation_id=f"bench-{i}", producer="bench", alert_id=f"bench-{i:07d}",
                source_kind="text", source_name="bench", title=title, text=text,
            )  # fmt: skip
            result = clf.classify(text, title=title, alert_id=alert.alert_id)
            ev = AlertClassified(correlation_id=alert.correlation_id, producer="classify", alert=alert,
                                 classification=result)  # fmt: skip
            fh.write(ev.model_dump_json() + "\n")
    tmp.replace(path)


def load_events(n: int) -> list[bytes]:
    path = Path(tempfile.gettempdir()) / f"vigil-notify-bench-events-{n}.jsonl"
    if not path.exists():
        print(f"classifying {n} alerts once into {path} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--make-events", str(n), str(path)], check=True)
    return [line.encode() for line in path.read_text(encoding="utf-8").splitlines()]


def callgrind_instrumentation(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (outside the timed region)."""
    subprocess.run(["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True)


def perf_control(fifo: str, command: str) -> None:
    """Send ``command`` (``enable``/``disable``) to ``perf record --control fifo:FIFO`` (outside the
    timed region)."""
    with open(fifo, "w") as fh:
        fh.write(command + "\n")


def redis_cpu_s(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    from redis.asyncio import Redis
    from vigil_notify.classified import decode_classified
    from vigil_notify.notifier import Notifier
    from vigil_notify.service import _publications, _record
    from vigil_notify.settings import NotifySettings
    from vigil_shared.bench import make_subscriptions
    from vigil_shared.embedded_redis import EmbeddedRedis
    from vigil_shared.envelope import encode_data

    raw = load_events(opts.n)
    with tempfile.TemporaryDirectory(prefix="vigil-notify-bench-") as tmp, EmbeddedRedis() as server:
        work = Path(tmp)
        subs_file = work / "subscriptions.yaml"
        subs_file.write_text(json.dumps(make_subscriptions(opts.subs, f"jsonl://{work / 'all.jsonl'}")))
        redis = Redis.from_url(server.url)
        settings = NotifySettings(throttle_max=1_000_000_000, gc_freeze=not opts.no_gc_freeze)
        notifier = Notifier(redis, settings=settings, owner="bench")
        t_load = time.process_time()
        await notifier.store.load_yaml(subs_file, prune=True)
        await notifier.store.index()
        load_s = time.process_time() - t_load
        rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        delivered = 0
        phases = [0.0, 0.0, 0.0]  # decode (the stream worker's), the Notifier, encode (the worker's)
        gc_s = [0.0]
        gc_started = [0.0]

        gc_by_gen = [0.0, 0.0, 0.0]
        gc_n = [0, 0, 0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.process_time()
            else:
                spent = time.process_time() - gc_started[0]
                gc_s[0] += spent
                gc_by_gen[info["generation"]] += spent
                gc_n[info["generation"]] += 1

        gc.callbacks.append(on_gc)
        sem = asyncio.Semaphore(settings.alert_concurrency)

        async def one(ev: AlertClassified) -> Any:
            async with sem:
                return await notifier.process(ev)

        redis_before = redis_cpu_s(await redis.info("cpu"))
        profiler = None
        if opts.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        if opts.callgrind:  # count instructions of the timed loop only (valgrind --instr-atstart=no)
            callgrind_instrumentation("on")
        if opts.perf_ctl:
            perf_control(opts.perf_ctl, "enable")
        started_cpu, started_wall, started_times = time.process_time(), time.perf_counter(), os.times()
        for r in range(opts.rounds):
            # each round uses new alert ids so nothing is skipped as already sent
            batch_raw = raw if r == 0 else [x.replace(b'"bench-', f'"r{r}-bench-'.encode()) for x in raw]
            for i in range(0, len(batch_raw), opts.batch):
                t0 = time.process_time()
                # the service's parse hook (StreamWorker(parse=decode_classified))
                events = [decode_classified(body) for body in batch_raw[i : i + opts.batch]]
                t1 = time.process_time()
                if opts.mode == "batch":
                    results = await notifier.process_many(events)
                else:
                    results = await asyncio.gather(*(one(ev) for ev in events))
                t2 = time.process_time()
                counts: Counter[tuple[str, str]] = Counter()
                for res in results:
                    if isinstance(res, BaseException):
                        raise res
                    # what the stream worker does with the service's publications: their data if
                    # the handler encoded it, else the event encoded
                    for p in _publications(res, counts):
                        p.data if p.data is not None else encode_data(p.event)  # type: ignore[arg-type]
                    delivered += len(res.events)
                _record(counts)  # the delivery metrics once per batch, as the batch handler does
                phases[0] += t1 - t0
                phases[1] += t2 - t1
                phases[2] += time.process_time() - t2
        cpu = time.process_time() - started_cpu
        ended_times = os.times()
        if opts.callgrind:
            callgrind_instrumentation("off")
        if opts.perf_ctl:
            perf_control(opts.perf_ctl, "disable")
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(opts.profile)
        gc.callbacks.remove(on_gc)
        print(f"GC per generation: {gc_n} collections, {[round(x, 2) for x in gc_by_gen]} s", file=sys.stderr)
        wall = time.perf_counter() - started_wall
        redis_after = redis_cpu_s(await redis.info("cpu"))
        await notifier.aclose()
        await redis.aclose()
        alerts = opts.n * opts.rounds
        return {
            "mode": opts.mode,
            "alerts": alerts,
            "deliveries": delivered,
            "deliveries_per_alert": delivered / alerts,
            "cpu_s": cpu,
            "cpu_us_per_alert": cpu / alerts * 1e6,
            "user_us_per_alert": (ended_times.user - started_times.user) / alerts * 1e6,
            "sys_us_per_alert": (ended_times.system - started_times.system) / alerts * 1e6,
            "gc_us_per_alert": gc_s[0] / alerts * 1e6,
            "decode_us_per_alert": phases[0] / alerts * 1e6,
            "notifier_us_per_alert": phases[1] / alerts * 1e6,
            "encode_us_per_alert": phases[2] / alerts * 1e6,
            "wall_s": wall,
            "alerts_per_wall_s": alerts / wall,
            "redis_cpu_us_per_alert": (redis_after - redis_before) / alerts * 1e6,
            "subscription_load_cpu_s": load_s,
            "peak_rss_mb_after_load": rss_after_load,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-events":
        make_events(int(sys.argv[2]), Path(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("--subs", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--mode", choices=("batch", "single"), default="batch")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="under valgrind --tool=callgrind --instr-atstart=no: switch instrumentation on for the timed loop only",
    )
    p.add_argument(
        "--perf-ctl",
        metavar="FIFO",
        help="under perf record -D -1 --control fifo:FIFO: sample the timed loop only (real cycles)",
    )
    p.add_argument("--profile", metavar="PATH", help="cProfile the timed loop into PATH (slows it down)")
    p.add_argument("--no-gc-freeze", action="store_true", help="VIGIL_NOTIFY_GC_FREEZE=false")
    opts = p.parse_args()
    os.environ.setdefault("VIGIL_LOG_LEVEL", "WARNING")
    out = asyncio.run(run(opts))
    if opts.json:
        print(json.dumps(out))
        return
    print(
        f"{out['mode']}: {out['alerts']} alerts, {out['deliveries']} deliveries "
        f"({out['deliveries_per_alert']:.2f}/alert); notify CPU {out['cpu_s']:.2f} s = "
        f"{out['cpu_us_per_alert']:.0f} µs/alert (user {out['user_us_per_alert']:.0f}, sys "
        f"{out['sys_us_per_alert']:.0f}; GC {out['gc_us_per_alert']:.0f}; decode "
        f"{out['decode_us_per_alert']:.0f}, Notifier {out['notifier_us_per_alert']:.0f}, encode "
        f"{out['encode_us_per_alert']:.0f}, each with the GC it triggered); "
        f"Redis CPU {out['redis_cpu_us_per_alert']:.0f} µs/alert; "
        f"{out['alerts_per_wall_s']:.0f} alerts/s wall; subscription load {out['subscription_load_cpu_s']:.1f} "
        f"CPU-s; peak RSS {out['peak_rss_mb_after_load']:.0f} MB after load, {out['peak_rss_mb']:.0f} MB at end"
    )


if __name__ == "__main__":
    main()
