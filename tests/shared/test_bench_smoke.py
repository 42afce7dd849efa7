"""Smoke test of ``vigil bench``: a tiny run through real processes prints the expected table.

The benchmark itself is not part of the test suite (``make bench`` runs it); this only checks that
the command works end to end and reports every figure.
"""

from __future__ import annotations

import json
import statistics
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
    # one round (the default): no round labels, no summary lines
    assert "#1" not in proc.stdout
    assert "rounds >=" not in proc.stdout

    report = json.loads(out.read_text())
    assert [(c["case"], c["round"]) for c in report["cases"]] == [
        ("ceiling (3 plain relays)", 1),
        ("stream, 1 classify", 1),
    ]
    cases = {c["case"]: c for c in report["cases"]}
    assert cases["ceiling (3 plain relays)"]["alerts_per_s"] > 0
    assert cases["ceiling (3 plain relays)"]["alerts"] == 5 * 200  # --ceiling-factor's default: 5
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


def test_bench_repeat_runs_rounds_and_summarizes(tmp_path: Path) -> None:
    """``--repeat 2``: ceiling then stream case in each round, each ratio to its own round's ceiling,
    a row per round, and the summary's medians computed from the per-round figures."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "vigil_shared.cli", "bench", "-n", "300", "--subscriptions", "200",
            "--repeat", "2", "--ceiling-factor", "2", "--no-http", "--rate", "0", "--json", str(out),
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the progress output names the round
    for k in (1, 2):
        assert f"round {k}/2: ceiling" in proc.stderr
        assert f"round {k}/2: stream, 1 classify" in proc.stderr
    lines = proc.stdout.splitlines()
    labels = [line.split("  ")[0].strip() for line in lines[2:6]]
    assert labels == [
        "ceiling (3 plain relays) #1", "stream, 1 classify #1", "ceiling (3 plain relays) #2", "stream, 1 classify #2",
    ]  # fmt: skip

    report = json.loads(out.read_text())
    assert report["options"]["repeat"] == 2
    cases = report["cases"]
    assert [(c["case"], c["round"]) for c in cases] == [
        ("ceiling (3 plain relays)", 1), ("stream, 1 classify", 1),
        ("ceiling (3 plain relays)", 2), ("stream, 1 classify", 2),
    ]  # fmt: skip
    ceilings, stream = cases[0::2], cases[1::2]
    for ceiling, c in zip(ceilings, stream, strict=True):
        assert ceiling["alerts_per_s"] > 0
        assert ceiling["alerts"] == 2 * 300  # --ceiling-factor 2: the 300 payloads twice
        assert ceiling["ratio_to_ceiling"] is None
        assert c["catch_all_deliveries"] == 300
        assert c["catch_all_duplicates"] == 0
        assert set(c["services"]) == {"ingest", "classify", "notify"}
        assert c["ratio_to_ceiling"] == pytest.approx(c["alerts_per_s"] / ceiling["alerts_per_s"])

    summary = report["summary"]
    assert list(summary) == ["ceiling (3 plain relays)", "stream, 1 classify"]
    s = summary["stream, 1 classify"]
    ratios = [c["ratio_to_ceiling"] for c in stream]
    rates = [c["alerts_per_s"] for c in stream]
    assert s["rounds"] == 2
    assert s["ratio_to_ceiling"] == {
        "median": pytest.approx(statistics.median(ratios)), "min": min(ratios), "max": max(ratios),
    }  # fmt: skip
    assert s["alerts_per_s"] == {
        "median": pytest.approx(statistics.median(rates)),
        "min": min(rates),
        "max": max(rates),
    }
    assert s["rounds_at_target"] == sum(r >= 0.2 for r in ratios)
    assert summary["ceiling (3 plain relays)"]["ratio_to_ceiling"] is None
    assert summary["ceiling (3 plain relays)"]["alerts_per_s"]["max"] == max(c["alerts_per_s"] for c in ceilings)

    r = s["ratio_to_ceiling"]
    assert (
        f"stream, 1 classify: ratio median {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}), "
        f"{s['rounds_at_target']}/2 rounds >= 0.20; alerts/s median {s['alerts_per_s']['median']:,.0f}"
    ) in proc.stdout
