"""notify's per-delivery rendering and delivered records alone, on ``bench_notify.py``'s alerts.

Run: ``uv run python services/notify/benchmarks/bench_render.py [-n 3000] [--callgrind]``.

The alerts are ``bench_notify.py``'s (``vigil bench``'s texts classified once, cached under the temp
directory); they are matched against ``vigil bench``'s subscriptions (1 catch-all JSONL + 10,000
others) before the measured part, which then does, per batch of 200 alerts, what notify does per
delivery once the routing is done: prepare each alert's message (:meth:`Renderer.prepare`), fill it in
per target (:meth:`PreparedMessage.render`), make the delivery jobs, their JSONL lines
(:func:`json_lines_bytes`), their recipient records (:func:`sent_records`) and their delivered
outcomes (:func:`delivered_outcomes`), and drop them all. The alerts themselves stay alive (their
decode and dealloc are not measured here).

Prints the CPU time and a digest of every output (the lines, the events' values and their stream
data, the records; not with ``--callgrind``, where it would cost more than what is measured): two
versions of the code with the same digest wrote the same bytes.

Instruction counts of the measured part: ``valgrind --tool=callgrind --instr-atstart=no
--callgrind-out-file=cg.out .venv/bin/python services/notify/benchmarks/bench_render.py --callgrind``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _bench_notify() -> Any:
    path = Path(__file__).with_name("bench_notify.py")
    spec = importlib.util.spec_from_file_location("_bench_notify", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("--subs", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--callgrind", action="store_true")
    opts = p.parse_args()

    from vigil_notify.classified import decode_classified
    from vigil_notify.delivered import DeliveryJob, delivered_outcomes, sent_records
    from vigil_notify.delivery import _Fragment, channel_hash, idempotency_key, occurred_at_json
    from vigil_notify.matching import SubscriptionIndex, match
    from vigil_notify.native import active
    from vigil_notify.rendering import Renderer, json_lines_bytes
    from vigil_notify.subscriptions import Subscription
    from vigil_shared.bench import make_subscriptions

    raw = _bench_notify().load_events(opts.n)
    events = [decode_classified(body) for body in raw]
    doc = make_subscriptions(opts.subs, "jsonl:///tmp/vigil-bench-render/all.jsonl")
    index = SubscriptionIndex([Subscription.model_validate(s) for s in doc["subscriptions"]])
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    # per alert: (alert id, revision, correlation id, [(sub id, url, name, reason, key), ...])
    plans: list[tuple[Any, list[tuple[str, str, str, str, str]]]] = []
    for ev in events:
        a = ev.alert
        targets = []
        for m in match(ev, index, now):
            sub = m.subscription
            for url in sub.channels:
                key = idempotency_key(a.alert_id, a.revision, sub.id, url)
                targets.append((sub.id, url, sub.name, m.explanation, key))
        plans.append((ev, targets))
    renderer = Renderer()
    sent_at = "2026-11-26T13:00:00.123456+01:00"
    at = datetime(2026, 11, 26, 12, 0, 1, 234567, tzinfo=UTC)
    at_fragment = _Fragment(occurred_at_json(at))
    digest = hashlib.sha256()
    deliveries = 0

    gc.collect()  # notify runs with its startup heap frozen and collections rare (NotifySettings.gc_freeze)
    gc.disable()
    if opts.callgrind:  # (a pause: callgrind takes the command in between two time slices)
        subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)
        time.sleep(0.2)
    started = time.process_time()
    for i in range(0, len(plans), opts.batch):
        jobs: list[Any] = []
        for ev, targets in plans[i : i + opts.batch]:
            prepared = renderer.prepare(ev, kind="new", sent_at=sent_at)
            a = ev.alert
            for sub_id, url, name, reason, key in targets:
                message = prepared.render(
                    reason=reason, subscription_id=sub_id, subscription_name=name, idempotency_key=key
                )
                jobs.append(
                    DeliveryJob(a.alert_id, a.revision, ev.correlation_id, sub_id, url, "new", reason, key,
                                message, (a.alert_id,), None, "1-0", None)
                )  # fmt: skip
        lines = json_lines_bytes([j.message for j in jobs])
        packed, keys = sent_records(jobs, channel_hash)
        ids = [f"{n + deliveries:032x}" for n in range(len(jobs))]
        outcomes = delivered_outcomes(jobs, at, at_fragment, ids, "notify", 1, False)
        if not opts.callgrind:  # (the digest would cost more than what is measured)
            for line in lines:
                digest.update(line)
            digest.update(repr((packed, keys)).encode())
            for o in outcomes:
                event = o.events[-1]
                values = sorted(event.__dict__.items())
                digest.update(repr((o.status, values, sorted(event.model_fields_set), o.data)).encode())
        deliveries += len(jobs)
        del jobs, lines, outcomes, packed, keys
    cpu = time.process_time() - started
    if opts.callgrind:
        subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, capture_output=True)
    print(
        f"native={active()} alerts={len(plans)} deliveries={deliveries} cpu={cpu:.3f}s "
        f"({cpu / max(deliveries, 1) * 1e6:.1f} µs/delivery) digest={digest.hexdigest()}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
