"""content_fingerprint alone, on ``vigil bench``'s texts: instructions (callgrind) or CPU time.

Run: ``uv run python services/notify/benchmarks/bench_fingerprint.py [-n 3000] [--repeat 20]``;
instructions of the timed loop alone: ``valgrind --tool=callgrind --instr-atstart=no
--callgrind-out-file=cg.out .venv/bin/python services/notify/benchmarks/bench_fingerprint.py
--callgrind --repeat 1`` (valgrind hides SHA-NI: the hash costs ~10x its real share there).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from vigil_notify.delivery import content_fingerprint
from vigil_shared.bench import make_texts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument(
        "--mixed", action="store_true", help="a few non-ASCII characters in each text (quote marks, a dash, accents)"
    )
    opts = p.parse_args()
    texts = make_texts(opts.n)
    if opts.mixed:
        texts = [
            (title.replace(" ", " \u2014 ", 1), "\u201c" + text.replace(". ", ".\u00a0", 2) + "\u201d Stra\u00dfe")
            for title, text in texts
        ]
    fp = content_fingerprint
    if opts.callgrind:
        subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)
    best = float("inf")
    for _ in range(opts.repeat):
        t0 = time.process_time()
        for title, text in texts:
            fp(title, text)
        best = min(best, time.process_time() - t0)
    if opts.callgrind:
        subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, capture_output=True)
    print(f"content_fingerprint: {best / opts.n * 1e6:.3f} µs per text (best of {opts.repeat})")


if __name__ == "__main__":
    main()
