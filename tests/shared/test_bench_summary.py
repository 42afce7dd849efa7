"""``vigil bench --repeat``: the per-case summary over rounds, the round labels, and bad input.

Pure logic on hand-made ``CaseResult``s (no processes, no Redis); the end-to-end run of
``--repeat 2`` is in test_bench_smoke.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from typer.testing import CliRunner
from vigil_shared.bench import (
    TARGET_RATIO,
    BenchOptions,
    BenchReport,
    CaseResult,
    Spread,
    native_warnings,
    render_table,
    run,
    spread,
    summarize,
    summary_lines,
    to_json,
)
from vigil_shared.cli import app

NAN = float("nan")
CEILING = "ceiling (3 plain relays)"
STREAM = "stream, 1 classify"


def _case(name: str, aps: float, round_no: int | None, ratio: float | None = None) -> CaseResult:
    return CaseResult(
        case=name, alerts=100, seconds=1.0, alerts_per_s=aps, p50_ms=NAN, p95_ms=NAN, p99_ms=NAN, max_ms=NAN,
        ratio_to_ceiling=ratio, round=round_no,
    )  # fmt: skip


def test_spread_odd_and_even_counts() -> None:
    assert spread([3.0, 1.0, 2.0]) == Spread(median=2.0, min=1.0, max=3.0)
    assert spread([4.0, 1.0, 3.0, 2.0]) == Spread(median=2.5, min=1.0, max=4.0)
    assert spread([7.0]) == Spread(median=7.0, min=7.0, max=7.0)


def test_spread_leaves_out_missing_figures() -> None:
    assert spread([None, 5.0, NAN, 1.0]) == Spread(median=3.0, min=1.0, max=5.0)
    assert spread([]) is None
    assert spread([None, NAN]) is None


def _rounds() -> list[CaseResult]:
    """Five rounds: ceilings and stream cases, ratios 0.21, 0.19, 0.2 (exactly the target), 0.25, 0.18."""
    cases = []
    for k, (ceiling, ratio) in enumerate(
        [(30_000.0, 0.21), (40_000.0, 0.19), (35_000.0, 0.2), (32_000.0, 0.25), (36_000.0, 0.18)], start=1
    ):
        cases.append(_case(CEILING, ceiling, k))
        cases.append(_case(STREAM, ceiling * ratio, k, ratio))
    cases.append(_case("steady 1000/s x 30s", 1000.0, None))
    return cases


def test_summarize_per_case_over_rounds() -> None:
    summary = summarize(_rounds())
    assert list(summary) == [CEILING, STREAM]  # first-seen order; the steady case (no round) left out
    c = summary[CEILING]
    assert c.rounds == 5
    assert c.alerts_per_s == Spread(median=35_000.0, min=30_000.0, max=40_000.0)
    assert c.ratio_to_ceiling is None
    assert c.rounds_at_target is None
    s = summary[STREAM]
    assert s.rounds == 5
    assert s.ratio_to_ceiling == Spread(median=0.2, min=0.18, max=0.25)
    assert s.rounds_at_target == 3  # 0.21, 0.2 and 0.25
    assert s.target_ratio == TARGET_RATIO
    assert s.alerts_per_s is not None
    assert s.alerts_per_s.median == pytest.approx(7_000)  # of 6,300, 7,600, 7,000, 8,000, 6,480
    assert s.alerts_per_s.min == pytest.approx(30_000 * 0.21)
    assert s.alerts_per_s.max == pytest.approx(32_000 * 0.25)


def test_summarize_other_target_and_missing_ratio() -> None:
    cases = [_case(STREAM, 5000.0, 1, 0.15), _case(STREAM, 6000.0, 2, 0.3), _case(STREAM, NAN, 3, None)]
    s = summarize(cases, target=0.1)[STREAM]
    assert s.rounds == 3
    assert s.rounds_at_target == 2
    assert s.ratio_to_ceiling == Spread(median=pytest.approx(0.225), min=0.15, max=0.3)  # type: ignore[arg-type]
    assert s.alerts_per_s == Spread(median=5500.0, min=5000.0, max=6000.0)
    assert summarize(cases)[STREAM].rounds_at_target == 1


def _report(repeat: int, cases: list[CaseResult]) -> BenchReport:
    return BenchReport(options=asdict(BenchOptions(repeat=repeat)), cases=cases, machine={}, summary=summarize(cases))


def test_repeated_table_labels_every_round_and_prints_the_summary() -> None:
    report = _report(5, _rounds())
    table = render_table(report).splitlines()
    labels = [line.split("  ")[0].strip() for line in table[2:]]
    assert labels == [
        *(f"{name} #{k}" for k in range(1, 6) for name in (CEILING, STREAM)),
        "steady 1000/s x 30s",
    ]
    lines = summary_lines(report)
    assert "over 5 rounds" in lines[1]
    assert lines[2] == f"{CEILING}: alerts/s median 35,000 (min 30,000, max 40,000) over 5 rounds"
    assert lines[3] == (
        f"{STREAM}: ratio median 0.200 (min 0.180, max 0.250), 3/5 rounds >= 0.20; "
        "alerts/s median 7,000 (min 6,300, max 8,000)"
    )
    data = json.loads(to_json(report))
    assert [c["round"] for c in data["cases"]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, None]
    assert data["summary"][STREAM]["rounds_at_target"] == 3
    assert data["summary"][STREAM]["ratio_to_ceiling"] == {"median": 0.2, "min": 0.18, "max": 0.25}


def test_single_round_output_is_unchanged() -> None:
    cases = [_case(CEILING, 30_000.0, 1), _case(STREAM, 6_300.0, 1, 0.21), _case("steady 1000/s x 30s", 990.0, None)]
    report = _report(1, cases)
    labels = [line.split("  ")[0].strip() for line in render_table(report).splitlines()[2:]]
    assert labels == [CEILING, STREAM, "steady 1000/s x 30s"]
    assert summary_lines(report) == []


@pytest.mark.parametrize("value", ["0", "-2"])
def test_repeat_below_one_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(app, ["bench", "--repeat", value, "--quiet"])
    assert result.exit_code == 2
    assert "--repeat" in result.output
    assert "greater than or equal to 1" in result.output
    with pytest.raises(ValueError, match="repeat"):
        run(BenchOptions(repeat=int(value), progress=False))


@pytest.mark.parametrize("value", ["0", "-1"])
def test_ceiling_factor_below_one_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(app, ["bench", "--ceiling-factor", value, "--quiet"])
    assert result.exit_code == 2
    assert "--ceiling-factor" in result.output
    with pytest.raises(ValueError, match="ceiling_factor"):
        run(BenchOptions(ceiling_factor=int(value), progress=False))


def test_a_service_measured_without_its_compiled_build_is_warned_about() -> None:
    compiled = _case(STREAM, 8_000.0, None)
    compiled.classify_native, compiled.notify_native = True, True
    stale = _case("http batch API, 1 classify", 6_000.0, None)
    stale.classify_native, stale.notify_native = True, False
    unknown = _case(CEILING, 30_000.0, None)  # no services: neither flag known
    report = BenchReport(options={}, cases=[unknown, compiled, stale], machine={})
    warnings = native_warnings(report)
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: notify ran its pure-Python modules (1 case(s))")
    assert "make native" in warnings[0]
    assert native_warnings(BenchReport(options={}, cases=[unknown, compiled], machine={})) == []
