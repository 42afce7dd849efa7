"""Smoke test of ``vigil bench``: a tiny run through real processes prints the expected table.

The benchmark itself is not part of the test suite (``make bench`` runs it); this only checks that
the command works end to end and reports every figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_command_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "vigil_shared.cli", "bench", "--alerts", "200", "--subscriptions", "200",
            "--no-http", "--rate", "0", "--quiet", "--json", str(out),
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = proc.stdout.splitlines()[0]
    for column in ("case", "alerts/s", "p50 ms", "p95 ms", "p99 ms", "CPU s", "peak RSS MB", "Redis MB", "ceiling"):
        assert column in header
    for case in ("ceiling (3 plain relays)", "stream, 1 classify"):
        assert case in proc.stdout

    report = json.loads(out.read_text())
    cases = {c["case"]: c for c in report["cases"]}
    assert cases["ceiling (3 plain relays)"]["alerts_per_s"] > 0
    for name in ("stream, 1 classify",):
        c = cases[name]
        assert c["alerts"] == 200
        assert c["alerts_per_s"] > 0
        assert c["p50_ms"] <= c["p95_ms"] <= c["p99_ms"]
        assert set(c["services"]) == {"ingest", "classify", "notify"}
        assert all(s["cpu_s"] >= 0 and s["peak_rss_mb"] > 0 for s in c["services"].values())
        assert c["services"]["classify"]["cpu_s"] > 0
        assert c["services"]["notify"]["cpu_s"] > 0  # ingest idles when alerts enter by the stream
        assert c["ratio_to_ceiling"] > 0
        assert c["deadletters"] == 0
        # every alert reached the catch-all exactly once, and Redis memory was sampled through the run
        assert c["catch_all_deliveries"] == 200
        assert c["catch_all_duplicates"] == 0
        assert len(c["redis_used_mb_timeline"]) == 11
        assert all(m > 0 for m in c["redis_used_mb_timeline"])
