"""Redis's work for notify: the scripts of ``Notifier.process_many`` plus the stream worker's fenced
commit of its outputs, per classified alert, against a private Redis.

Run: ``uv run python services/notify/benchmarks/bench_notify_redis.py [-n 3000] [--batch 200]``.

The alerts and subscriptions are ``bench_notify.py``'s. The classified entries are written to an
input stream and read back with ``XREADGROUP`` (so the commit's ownership checks see real pending
entries); each read batch goes through ``Notifier.process_many`` and its publications are committed
by :func:`vigil_shared.worker.commit_encoded` (what the batch handler mode does).

``--redis-callgrind FILE``: the private redis-server runs under ``valgrind --tool=callgrind
--instr-atstart=no`` and is instrumented for the timed loop only (``callgrind_control``), so
FILE holds Redis's instructions for exactly that work (``callgrind_annotate FILE``). ``--callgrind``:
the same for this process, when it runs under valgrind itself. Prints Redis CPU and the per-command
statistics (``INFO commandstats``) per alert, and this process's CPU per alert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_notify import callgrind_instrumentation, load_events, redis_cpu_s

SRC, GROUP, CONSUMER = "bench.notify.in", "notify", "bench"


def redis_wrapper(work: Path, out_file: str) -> str:
    """A redis-server launcher that runs it under callgrind, instrumentation off at start."""
    from vigil_shared.embedded_redis import find_redis_server

    server = find_redis_server()
    script = work / "redis-under-callgrind"
    script.write_text(
        f'#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out_file} {server} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def redis_instrumentation(pid: int, state: str) -> None:
    """callgrind_control on the redis-server: ``on``/``off`` (instrumentation) or ``dump``."""
    arg = "--dump" if state == "dump" else f"--instr={state}"
    subprocess.run(["callgrind_control", arg, str(pid)], check=True, capture_output=True)


def commandstats(info: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for k, v in info.items()}


async def run(opts: argparse.Namespace, work: Path, callgrind_out: str | None) -> dict[str, Any]:
    from vigil_notify.notifier import Notifier
    from vigil_notify.service import _publications
    from vigil_notify.settings import NotifySettings
    from vigil_shared.bench import make_subscriptions
    from vigil_shared.embedded_redis import EmbeddedRedis
    from vigil_shared.envelope import decode_body, encode_data, encode_json
    from vigil_shared.events import AlertClassified, parse_event
    from vigil_shared.runtime import redis_client
    from vigil_shared.worker import commit_encoded

    raw = load_events(opts.n)
    if callgrind_out:
        os.environ["VIGIL_REDIS_SERVER"] = redis_wrapper(work, callgrind_out)
    with EmbeddedRedis() as server:
        subs_file = work / "subscriptions.yaml"
        subs_file.write_text(json.dumps(make_subscriptions(opts.subs, f"jsonl://{work / 'all.jsonl'}")))
        redis = redis_client(server.url)
        settings = NotifySettings(throttle_max=1_000_000_000)
        notifier = Notifier(redis, settings=settings, owner="bench")
        await notifier.store.load_yaml(subs_file, prune=True)
        await notifier.store.index()
        await redis.xgroup_create(SRC, GROUP, id="0", mkstream=True)
        for i in range(0, len(raw), 500):
            async with redis.pipeline(transaction=False) as pipe:
                for body in raw[i : i + 500]:
                    pipe.xadd(SRC, {b"__data__": encode_json(AlertClassified.model_validate_json(body), body)})
                await pipe.execute()
        pid = int((await redis.info("server"))["process_id"])
        await redis.config_resetstat()
        cpu_before = await redis.info("cpu")
        redis_before = redis_cpu_s(cpu_before)
        if opts.redis_callgrind:
            redis_instrumentation(pid, "on")
        if opts.callgrind:
            callgrind_instrumentation("on")
        started = time.process_time()
        delivered = 0
        while True:
            reply = await redis.xreadgroup(GROUP, CONSUMER, {SRC: ">"}, count=opts.batch)
            if not reply:
                break
            entries = reply[0][1]
            events = [parse_event(AlertClassified, decode_body(fields)) for _, fields in entries]
            results = await notifier.process_many(events, entry_ids=[eid.decode() for eid, _ in entries])
            encoded = []
            counts: Counter[tuple[str, str]] = Counter()
            for (eid, _), res in zip(entries, results, strict=True):
                if isinstance(res, BaseException):
                    raise res
                pubs = _publications(res, counts)
                outputs = [(p.stream, p.data if p.data is not None else encode_data(p.event)) for p in pubs]  # type: ignore[arg-type]
                encoded.append((eid, outputs))
                delivered += len(res.events)
            await commit_encoded(redis, SRC, GROUP, CONSUMER, encoded, 10_000_000)
        cpu = time.process_time() - started
        if opts.callgrind:
            callgrind_instrumentation("off")
        if opts.redis_callgrind:
            redis_instrumentation(pid, "off")
            redis_instrumentation(pid, "dump")
        cpu_after = await redis.info("cpu")
        redis_after = redis_cpu_s(cpu_after)
        sys_s = float(cpu_after["used_cpu_sys"]) - float(cpu_before["used_cpu_sys"])
        stats = commandstats(await redis.info("commandstats"))
        mem = await redis.info("memory")
        throttle_bytes = windows = members = 0
        async for k in redis.scan_iter(match="vigil:notify:throttle:*", count=1000):
            throttle_bytes += int(await redis.memory_usage(k) or 0)
            windows += 1
            members += int(await redis.zcard(k))
        print(
            f"Redis used_memory {int(mem['used_memory']) / 1e6:.1f} MB; throttle windows {windows}, "
            f"{members} members, {throttle_bytes / 1e6:.2f} MB",
            file=sys.stderr,
        )
        pending = (await redis.xpending(SRC, GROUP))["pending"]
        await notifier.aclose()
        await redis.aclose()
    n = opts.n
    if pending:
        raise SystemExit(f"{pending} entries left pending")
    return {
        "alerts": n,
        "deliveries_per_alert": delivered / n,
        "cpu_us_per_alert": cpu / n * 1e6,
        "redis_cpu_us_per_alert": (redis_after - redis_before) / n * 1e6,
        "redis_sys_us_per_alert": sys_s / n * 1e6,
        "commands_per_alert": {k: (round(c / n, 2), round(us / n, 1)) for k, (c, us) in sorted(stats.items())},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("--subs", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--redis-callgrind", metavar="FILE")
    p.add_argument("--callgrind", action="store_true")
    opts = p.parse_args()
    os.environ.setdefault("VIGIL_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="vigil-notify-redis-bench-") as tmp:
        callgrind_out = os.path.abspath(opts.redis_callgrind) if opts.redis_callgrind else None
        out = asyncio.run(run(opts, Path(tmp), callgrind_out))
    print(
        f"{out['alerts']} alerts ({out['deliveries_per_alert']:.2f} deliveries each): this process "
        f"{out['cpu_us_per_alert']:.0f} µs/alert, Redis {out['redis_cpu_us_per_alert']:.1f} µs/alert "
        f"(system {out['redis_sys_us_per_alert']:.1f})"
    )
    print("  per alert (calls, µs):", json.dumps(out["commands_per_alert"]))


if __name__ == "__main__":
    main()
