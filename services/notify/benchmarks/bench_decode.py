"""notify's decode of classified alerts alone: :func:`~vigil_notify.classified.decode_classified`
over ``bench_notify.py``'s cached events (the same ``vigil bench`` texts, classified once).

Run: ``uv run python services/notify/benchmarks/bench_decode.py [-n 3000] [--rounds 3]
[--batch 200] [--what decode]``. Each read batch (``--batch`` entries, as the stream worker reads
them) is decoded into a list, then the list is dropped (so freeing the alerts is counted, as in the
service, where a batch's alerts die after it). The garbage collector is set as notify sets it after
its index build (:func:`~vigil_notify.subscriptions.freeze_long_lived`, then the young and full
collection spacing of :class:`~vigil_notify.settings.NotifySettings`' defaults); ``--cpython-gc``
keeps CPython's thresholds instead.

Instruction counts of the loop alone: ``valgrind --tool=callgrind --instr-atstart=no
--callgrind-out-file=cg.out .venv/bin/python services/notify/benchmarks/bench_decode.py --callgrind``
then ``callgrind_annotate cg.out | head``.

``--what`` compares the parts: ``decode`` (notify's parse hook), ``full`` (the contract's own
validator, :func:`~vigil_shared.events.parse_event`), ``orjson`` (``orjson.loads`` alone: the JSON
parse without any validation) and ``none`` (the loop alone).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_notify import callgrind_instrumentation, load_events


def decoder(what: str) -> Callable[[bytes], Any]:
    if what == "decode":
        from vigil_notify.classified import decode_classified

        return decode_classified
    if what == "full":
        from vigil_shared.events import AlertClassified, parse_event

        return lambda body: parse_event(AlertClassified, body)
    if what == "orjson":
        import orjson

        return orjson.loads
    if what == "none":
        return lambda body: body
    raise SystemExit(f"unknown --what {what!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=3000, help="alerts (bench_notify.py's cached events file)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--what", default="decode", choices=["decode", "full", "orjson", "none"])
    ap.add_argument("--cpython-gc", action="store_true", help="keep CPython's GC thresholds (not notify's)")
    ap.add_argument("--callgrind", action="store_true", help="instrument the loop only (--instr-atstart=no)")
    opts = ap.parse_args()

    raw = load_events(opts.n)
    decode = decoder(opts.what)
    for body in raw[:50]:  # warm up (first-use caches, lazy imports)
        decode(body)
    if not opts.cpython_gc:
        from vigil_notify.settings import NotifySettings
        from vigil_notify.subscriptions import freeze_long_lived, space_full_collections, space_young_collections

        settings = NotifySettings()
        freeze_long_lived(interval_s=0.0)
        space_full_collections(settings.gc_gen1_per_full_collection)
        space_young_collections(settings.gc_young_threshold)
    else:
        gc.collect()
    batches = [raw[i : i + opts.batch] for i in range(0, len(raw), opts.batch)]
    if opts.callgrind:
        callgrind_instrumentation("on")
    t0 = time.process_time()
    for _ in range(opts.rounds):
        for batch in batches:
            events = [decode(body) for body in batch]
            del events
    cpu = time.process_time() - t0
    if opts.callgrind:
        callgrind_instrumentation("off")
    alerts = len(raw) * opts.rounds
    size = sum(map(len, raw)) / len(raw)
    print(f"{opts.what}: {alerts} alerts of {size:.0f} B, {cpu / alerts * 1e6:.2f} µs CPU per alert")


if __name__ == "__main__":
    main()
