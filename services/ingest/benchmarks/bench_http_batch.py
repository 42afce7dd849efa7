"""Ingest's HTTP batch path alone: CPU ms per alert and peak RSS of the ingest process.

Starts a private Redis and ``vigil run ingest`` (as ``vigil bench`` does: API key on, log level
WARNING, rate limit lifted), POSTs ``-n`` generated ~1 KB alerts (``vigil_shared.bench.make_texts``,
the bench's own body: ``id``, ``title``, ``text``, ``issuer``) to ``/v1/alerts:batch`` in batches
of ``--batch``, ``--inflight`` requests at a time, then prints the ingest process's CPU seconds
(user + system, from /proc) over the posting, CPU ms per alert, its RSS when idle and its peak RSS
(VmHWM). Nothing consumes the stream: this is ingest only.

Run: ``uv run python services/ingest/benchmarks/bench_http_batch.py [-n 6000] [--batch 500]
[--inflight 2] [--profile OUT.raw] [--callgrind OUT]`` (``--profile`` attaches py-spy to the
ingest process for the posting and writes raw stacks).

``--callgrind OUT``: ingest runs under ``valgrind --tool=callgrind --instr-atstart=no`` and
``callgrind_control -i on/off`` switches its instrumentation on for the posting only (after a warm-up
batch of ``--batch`` other alerts), so OUT holds ingest's instructions for exactly the ``-n`` alerts
(``callgrind_annotate OUT``; the total is printed, per alert too): repeatable to ~0.1%, for A/B.
Valgrind is ~50x slower: use ``-n 2000`` or so.

``--redis-callgrind OUT``: the same for the private redis-server (ingest runs natively): it runs
under ``valgrind --tool=callgrind --instr-atstart=no`` and is instrumented for the posting only,
after the warm-up batch (which also loads the scripts), so OUT holds Redis's instructions for
exactly the ``-n`` alerts' registration, title lookups and publishing. Every run also prints
Redis's CPU and its per-command statistics (``INFO commandstats``, reset after the warm-up) per
alert of the posting. ``--duplicates``: the bodies are posted once before the measured posting, so
every measured alert is a duplicate (the feed poller's usual case: a changed feed re-registers
every item it still lists). ``--warm-up N``: N other alerts posted before the measurement (default:
one batch under the callgrind options, else none; the language model's rows are read as texts first
reach them, so a steady-state A/B of ingest wants a few thousand). ``--smaps N``: the N largest
mappings of the ingest process by RSS, idle and after the posting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
from vigil_shared import streams
from vigil_shared.bench import cpu_seconds, make_texts, new_api_key, peak_rss_mb
from vigil_shared.demo import service_process
from vigil_shared.embedded_redis import EmbeddedRedis, free_port


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def callgrind_process(env: dict[str, str], workdir: Path, out: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``vigil run ingest`` under callgrind, instrumentation off until switched on, logging to
    ``workdir/ingest.log`` (:func:`vigil_shared.demo.service_process`; a minute to stop: valgrind
    writes its profile then)."""
    prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    return service_process("ingest", env, workdir, prefix=prefix, stop_timeout_s=60)


def mappings_mb(pid: int) -> dict[str, tuple[float, float]]:
    """RSS and anonymous MB per mapped file (``[heap]``, ``[anon]`` for unnamed) of a process (smaps)."""
    rss: dict[str, float] = {}
    anon: dict[str, float] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                rss[name] = rss.get(name, 0.0) + int(parts[1]) / 1024
            elif parts[0] == "Anonymous:":
                anon[name] = anon.get(name, 0.0) + int(parts[1]) / 1024
    return {k: (v, anon.get(k, 0.0)) for k, v in rss.items()}


def print_mappings(label: str, pid: int, top: int) -> None:
    maps = mappings_mb(pid)
    print(
        f"{label}: {sum(v for v, _ in maps.values()):.1f} MB in {len(maps)} mappings; the largest (RSS, anonymous MB):"
    )
    for name, (rss, anon) in sorted(maps.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {rss:7.1f} {anon:7.1f}  {name}")


def redis_under_callgrind(workdir: Path, out: Path) -> str:
    """A redis-server launcher (for ``VIGIL_REDIS_SERVER``) that runs it under callgrind with
    instrumentation off at start."""
    from vigil_shared.embedded_redis import find_redis_server

    server = find_redis_server()
    script = workdir / "redis-under-callgrind"
    script.write_text(
        f'#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out} {server} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def redis_stats(url: str) -> tuple[int, float, dict[str, tuple[int, int]]]:
    """The redis-server's pid, CPU seconds (user + system) and ``INFO commandstats`` (calls, usec)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("all")
    finally:
        client.close()
    stats = {
        k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for k, v in info.items()
        if k.startswith("cmdstat_")
    }
    return int(info["process_id"]), float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), stats


def callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def callgrind_total(out: Path) -> int:
    """The instruction total (``summary:``/``totals:`` line) of a callgrind output file."""
    total = 0
    for path in [out, *out.parent.glob(out.name + ".*")]:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


async def post_all(port: int, key: str, bodies: list[bytes], inflight: int) -> list[float]:
    url = f"http://127.0.0.1:{port}/v1/alerts:batch"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sem = asyncio.Semaphore(inflight)
    times: list[float] = []
    async with httpx.AsyncClient(timeout=300) as client:

        async def post(body: bytes) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers=headers)
                times.append(time.perf_counter() - t0)
                if r.status_code != 202:
                    raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")

        await asyncio.gather(*(post(b) for b in bodies))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=6000, help="alerts to post")
    ap.add_argument("--batch", type=int, default=500, help="alerts per request")
    ap.add_argument("--inflight", type=int, default=2, help="requests in flight")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy raw output file")
    ap.add_argument("--callgrind", type=Path, default=None, help="callgrind output file (ingest under valgrind)")
    ap.add_argument(
        "--redis-callgrind", type=Path, default=None, help="callgrind output file (redis-server under valgrind)"
    )
    ap.add_argument(
        "--duplicates",
        action="store_true",
        help="post the bodies once before the measured posting: every measured alert is a duplicate",
    )
    ap.add_argument(
        "--warm-up",
        type=int,
        default=None,
        help="alerts (other than the measured ones) posted before the measurement (default: one batch under"
        " --callgrind/--redis-callgrind, else none)",
    )
    ap.add_argument("--smaps", type=int, default=0, help="print the N largest mappings by RSS, idle and after")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    def batches(texts: list[tuple[str, str]], prefix: str) -> list[bytes]:
        return [
            orjson.dumps(
                [
                    {"id": f"{prefix}-{j:07d}", "title": t, "text": x, "issuer": "Benchmark Desk"}
                    for j, (t, x) in enumerate(texts[i : i + args.batch], start=i)
                ]
            )
            for i in range(0, len(texts), args.batch)
        ]

    bodies = batches(make_texts(args.n, seed=args.seed), "bench")
    warmed = args.callgrind is not None or args.redis_callgrind is not None
    warm_n = args.warm_up if args.warm_up is not None else (args.batch if warmed else 0)
    warm_up = batches(make_texts(warm_n, seed=args.seed + 1), "warm-up") if warm_n else []
    key, line = new_api_key()
    with tempfile.TemporaryDirectory(prefix="vigil-ingest-bench-") as tmp:
        workdir = Path(tmp)
        redis_timeout = 10.0
        if args.redis_callgrind is not None:
            args.redis_callgrind = args.redis_callgrind.resolve()
            for old in [args.redis_callgrind, *args.redis_callgrind.parent.glob(args.redis_callgrind.name + ".*")]:
                old.unlink(missing_ok=True)
            os.environ["VIGIL_REDIS_SERVER"] = redis_under_callgrind(workdir, args.redis_callgrind)
            redis_timeout = 120.0
        server = EmbeddedRedis(workdir=workdir / "redis")
        (workdir / "redis").mkdir()
        server.start(timeout_s=redis_timeout)
        try:
            out = run_once(args, server, workdir, key, line, bodies, warm_up)
        finally:
            server.stop()  # under valgrind: its profile is written at exit
    report(args, out)


def run_once(
    args: argparse.Namespace,
    server: EmbeddedRedis,
    workdir: Path,
    key: str,
    line: str,
    bodies: list[bytes],
    warm_up: list[bytes],
) -> dict[str, Any]:
    """Starts ingest against ``server``, posts ``warm_up`` then ``bodies`` (measured); the figures."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_API_KEYS": line,
        "VIGIL_AUTH_DISABLED": "false",
        "VIGIL_API_RATE_PER_S": "1000000",
        "VIGIL_API_BURST": "1000000",
        "VIGIL_HTTP_PORT": str(port),
        "VIGIL_HTTP_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    if args.callgrind is not None:
        args.callgrind = args.callgrind.resolve()
        for old in [args.callgrind, *args.callgrind.parent.glob(args.callgrind.name + ".*")]:
            old.unlink(missing_ok=True)
        started = callgrind_process(env, workdir, args.callgrind)
    else:
        started = service_process("ingest", env, workdir)
    with started as proc:
        deadline = time.monotonic() + (900 if args.callgrind else 120)
        while True:
            if proc.poll() is not None:
                sys.exit((workdir / "ingest.log").read_text()[-3000:])
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit("ingest not ready")
            time.sleep(0.2)
        time.sleep(0.5)
        pid = proc.pid
        if warm_up:
            asyncio.run(post_all(port, key, warm_up, args.inflight))
        if args.duplicates:
            asyncio.run(post_all(port, key, bodies, args.inflight))
        idle_rss, idle_peak = rss_mb(pid), peak_rss_mb(pid)
        if args.smaps:
            print_mappings("ingest idle", pid, args.smaps)
        spy = None
        if args.profile is not None and shutil.which("py-spy"):
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(pid), "-r", "250", "-f", "raw", "-o", str(args.profile)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        import redis

        admin = redis.Redis.from_url(server.url)
        admin.config_resetstat()
        redis_pid, redis_cpu0, _ = redis_stats(server.url)
        if args.redis_callgrind is not None:
            callgrind_control(redis_pid, "--instr=on")
        if args.callgrind is not None:
            callgrind_control(pid, "--instr=on")
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        times = asyncio.run(post_all(port, key, bodies, args.inflight))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        if args.callgrind is not None:
            callgrind_control(pid, "--instr=off")
            callgrind_control(pid, "--dump")
        if args.redis_callgrind is not None:
            callgrind_control(redis_pid, "--instr=off")
            callgrind_control(redis_pid, "--dump")
        _, redis_cpu1, per_command = redis_stats(server.url)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        peak, after = peak_rss_mb(pid), rss_mb(pid)
        if args.smaps:
            print_mappings("ingest after the posting", pid, args.smaps)
        anon, mapped = rss_mb(pid, "RssAnon"), rss_mb(pid, "RssFile")
        published = admin.xlen(streams.ALERTS_RECEIVED) - sum(len(orjson.loads(b)) for b in warm_up)
        if args.duplicates:
            published -= args.n
        admin.close()
    return {
        "wall": wall,
        "times": sorted(times),
        "cpu": cpu,
        "published": published,
        "rss": (idle_rss, idle_peak, after, peak, anon, mapped),
        "redis_cpu": redis_cpu1 - redis_cpu0,
        "per_command": per_command,
    }


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    wall, times, cpu, published = out["wall"], out["times"], out["cpu"], out["published"]
    idle_rss, idle_peak, after, peak, anon, mapped = out["rss"]
    n = args.n
    print(
        f"alerts {args.n} (batches of {args.batch}, {args.inflight} in flight), published {published}\n"
        f"wall {wall:.2f} s = {args.n / wall:,.0f} alerts/s; request median {times[len(times) // 2] * 1000:.0f} ms,"
        f" max {times[-1] * 1000:.0f} ms\n"
        f"ingest CPU {cpu:.2f} s = {cpu * 1000 / args.n:.3f} ms per alert\n"
        f"ingest RSS idle {idle_rss:.0f} MB (peak before posting {idle_peak:.0f} MB), after {after:.0f} MB,"
        f" peak {peak:.0f} MB\n"
        f"ingest RSS after: {anon:.0f} MB anonymous, {mapped:.0f} MB file-backed (mapped files, shared)"
    )
    commands = {
        name: (round(calls / n, 3), round(usec / n, 2)) for name, (calls, usec) in sorted(out["per_command"].items())
    }
    print(f"Redis CPU {out['redis_cpu']:.2f} s = {out['redis_cpu'] * 1e6 / n:.1f} µs per alert")
    print("Redis commands per alert (calls, µs):", orjson.dumps(commands).decode())
    for label, path in (("ingest", args.callgrind), ("redis", args.redis_callgrind)):
        if path is not None:
            total = callgrind_total(path)
            print(
                f"callgrind {label}: {total:,} instructions = {total / 1e6:,.1f}M, {total / n / 1e3:,.1f}k per alert",
                path,
            )


if __name__ == "__main__":
    main()
