"""The stream worker's fenced commit alone (:func:`vigil_shared.worker.commit_encoded`): Redis's work
and this process's per committed entry, against a private Redis.

Run: ``uv run python shared/benchmarks/bench_commit_redis.py [-n 6000] [--batch 200] [--outputs 1]
[--size 3300] [--redis-callgrind FILE]``.

``n`` entries are written to an input stream and read back with ``XREADGROUP`` (so the commit's
ownership checks see real pending entries); each read batch is committed with ``--outputs`` outputs
per entry of ``--size`` bytes each (classify's shape: 1 output of ~3.3 KB; notify's: ~3 of ~1.5 KB),
with the safety cap on. ``--fenced K``: K entries of each batch are claimed by another consumer before
the commit (the fenced path). Only the commits are measured: Redis's CPU (``INFO cpu``) and
``INFO commandstats``, this process's CPU around the commit calls (``time.process_time``), and with
``--redis-callgrind FILE`` the redis-server runs under callgrind, instrumented for the commits only
(``callgrind_annotate FILE``); ``--callgrind``: this process's instructions in the commit calls, when
it runs under ``valgrind --tool=callgrind --instr-atstart=no`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "notify" / "benchmarks"))

SRC, GROUP, CONSUMER, OUT = "bench.commit.in", "g", "bench", "bench.commit.out"


async def run(opts: argparse.Namespace, work: Path) -> dict[str, object]:
    from bench_notify import callgrind_instrumentation
    from bench_notify_redis import commandstats, redis_instrumentation, redis_wrapper
    from vigil_shared.embedded_redis import EmbeddedRedis
    from vigil_shared.runtime import redis_client
    from vigil_shared.worker import commit_encoded

    if opts.redis_callgrind:
        os.environ["VIGIL_REDIS_SERVER"] = redis_wrapper(work, opts.redis_callgrind)
    # varied payloads of the given size (JSON-ish text; the content does not matter to Redis)
    payloads = [
        (f'{{"n":{i},"x":"' + "abcdefghij" * (opts.size // 10))[: opts.size - 2].encode() + b'"}' for i in range(opts.n)
    ]
    with EmbeddedRedis() as server:
        redis = redis_client(server.url)
        await redis.xgroup_create(SRC, GROUP, id="0", mkstream=True)
        for i in range(0, opts.n, 500):
            async with redis.pipeline(transaction=False) as pipe:
                for j in range(i, min(i + 500, opts.n)):
                    pipe.xadd(SRC, {b"__data__": b"x%d" % j})
                await pipe.execute()
        pid = int((await redis.info("server"))["process_id"])
        await redis.config_resetstat()
        cpu0 = await redis.info("cpu")
        if opts.redis_callgrind:
            redis_instrumentation(pid, "on")
        spent = 0.0
        committed = 0
        k = 0
        while True:
            reply = await redis.xreadgroup(GROUP, CONSUMER, {SRC: ">"}, count=opts.batch)
            if not reply:
                break
            entries = reply[0][1]
            if opts.fenced:
                ids = [eid for eid, _ in entries[: opts.fenced]]
                await redis.xclaim(SRC, GROUP, "other", 0, ids, justid=True)
            results = []
            for eid, _ in entries:
                results.append((eid, [(OUT, payloads[(k + o) % opts.n]) for o in range(opts.outputs)]))
                k += 1
            if opts.callgrind:
                callgrind_instrumentation("on")
            t0 = time.process_time()
            done = await commit_encoded(redis, SRC, GROUP, CONSUMER, results, 10_000_000)
            spent += time.process_time() - t0
            if opts.callgrind:
                callgrind_instrumentation("off")
            committed += len(done)
        if opts.redis_callgrind:
            redis_instrumentation(pid, "off")
            redis_instrumentation(pid, "dump")
        cpu1 = await redis.info("cpu")
        stats = commandstats(await redis.info("commandstats"))
        out_len = await redis.xlen(OUT)
        pending = (await redis.xpending(SRC, GROUP))["pending"]
        await redis.aclose()
    n = opts.n
    redis_s = sum(float(cpu1[f]) - float(cpu0[f]) for f in ("used_cpu_user", "used_cpu_sys"))
    return {
        "entries": n,
        "committed": committed,
        "outputs": out_len,
        "pending_after": pending,
        "client_us_per_entry": spent / n * 1e6,
        "redis_us_per_entry": redis_s / n * 1e6,
        "commands_per_entry": {k: (round(c / n, 3), round(us / n, 2)) for k, (c, us) in sorted(stats.items())},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=6000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--outputs", type=int, default=1)
    p.add_argument("--size", type=int, default=3300)
    p.add_argument("--fenced", type=int, default=0)
    p.add_argument("--redis-callgrind", metavar="FILE")
    p.add_argument("--callgrind", action="store_true", help="under callgrind: instrument the commit calls only")
    opts = p.parse_args()
    if opts.redis_callgrind:
        opts.redis_callgrind = os.path.abspath(opts.redis_callgrind)
    with tempfile.TemporaryDirectory(prefix="vigil-commit-bench-") as tmp:
        out = asyncio.run(run(opts, Path(tmp)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
