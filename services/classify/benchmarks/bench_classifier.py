"""Instructions (or CPU time) per alert of ``Classifier.classify_payload`` alone, on the bench texts.

The loop over ``make_alerts(n)`` (after a warm-up of 50 alerts) is the only part counted::

    VIGIL_BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        --callgrind-out-file=cg.out .venv/bin/python services/classify/benchmarks/bench_classifier.py -n 2000
    callgrind_annotate cg.out | head

Without valgrind it prints the CPU-µs per alert of the loop (noisy: alternate A/B runs). The
compiled build is used when one matches the source (``make native``); ``VIGIL_CLASSIFY_NATIVE=0``
runs the pure modules.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def _callgrind(state: str) -> None:
    if os.environ.get("VIGIL_BENCH_CALLGRIND") == "1":
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="alerts classified in the counted loop")
    args = parser.parse_args()

    from vigil_classify import native
    from vigil_classify.benchmark import make_alerts
    from vigil_classify.engine import Classifier

    classifier = Classifier()
    alerts = make_alerts(args.n)
    classify = classifier.classify_payload
    for title, text in alerts[:50]:
        classify(text, title=title)
    _callgrind("on")
    c0 = time.process_time()
    for title, text in alerts:
        classify(text, title=title)
    cpu = time.process_time() - c0
    _callgrind("off")
    print(f"native={native.active()} n={args.n} cpu_us_per_alert={cpu / args.n * 1e6:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
