"""Instructions of each step of classify's per-alert path outside the classifier, one phase at a time.

    VIGIL_BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/x/cg.out \\
        .venv/bin/python services/classify/benchmarks/bench_svc_parts.py -n 2000
    for f in /tmp/x/cg.out.*; do callgrind_annotate $f | grep TOTALS; done

Each phase runs over the same ``n`` bench alerts (``vigil_shared.bench.make_texts``) and is followed
by a callgrind dump (``callgrind_control --dump=<phase>``), so each dump file counts one phase:
decode (the worker's ``validate_json(decode_body(fields))``), payload (the classifier), json (the
AlertClassified body), data (the whole ``classified_data``, classifier included), writer (the service's
``EntryWriter.outcomes``,
classifier included). Without callgrind,
prints each phase's CPU time per alert.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from vigil_classify.engine import Classifier
from vigil_classify.service import _PRODUCER, _classified_json, alert_payload, classified_data, entry_writer
from vigil_shared.bench import _alert, make_texts
from vigil_shared.envelope import DATA_FIELD, decode_body, encode_data
from vigil_shared.events import SCHEMA_VERSION, AlertReceived, new_event_id, utcnow

CALLGRIND = bool(os.environ.get("VIGIL_BENCH_CALLGRIND"))


def _phase(name: str, fn: Callable[[], Any]) -> Any:
    gc.collect()
    if CALLGRIND:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    t0 = time.process_time()
    out = fn()
    dt = time.process_time() - t0
    if CALLGRIND:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
        subprocess.run(["callgrind_control", f"--dump={name}", str(os.getpid())], check=True, capture_output=True)
    return out, dt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--phases", default="decode,payload,json,data,writer")
    args = parser.parse_args()
    n = args.n
    # as the worker has them: validated from their JSON
    alerts = [
        AlertReceived.model_validate_json(_alert(i, t, x).model_dump_json()) for i, (t, x) in enumerate(make_texts(n))
    ]
    entries = [{DATA_FIELD: encode_data(a)} for a in alerts]
    classifier = Classifier()
    for a in alerts[:50]:  # warm the caches a little (as a running service's are)
        classified_data(classifier, a)
    validate = AlertReceived.__pydantic_validator__.validate_json
    payloads = [alert_payload(classifier, a) for a in alerts]
    writer = entry_writer(classifier, "out")
    phases: dict[str, Callable[[], Any]] = {
        "decode": lambda: [validate(decode_body(f)) for f in entries],
        "payload": lambda: [alert_payload(classifier, a) for a in alerts],
        "json": lambda: [
            _classified_json(new_event_id(), utcnow(), SCHEMA_VERSION, a.correlation_id, _PRODUCER, a, p, True)
            for a, p in zip(alerts, payloads, strict=True)
        ],
        "data": lambda: [classified_data(classifier, a) for a in alerts],
        "writer": lambda: writer.outcomes(alerts),
    }
    for name in args.phases.split(","):
        _, dt = _phase(name, phases[name])
        print(f"{name:<8} {dt / n * 1e6:8.2f} CPU-us/alert")


if __name__ == "__main__":
    main()
