from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner
from vigil_classify.cli import register

app = typer.Typer()
register(app)
runner = CliRunner()


def test_classify_file(tmp_path: Path) -> None:
    f = tmp_path / "alert.txt"
    f.write_text("Extremist groups may attack shopping malls in Moscow, Russia.", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(f)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["is_threat"] is True
    assert data["countries"] == ["RU"]
    assert {t["type"] for t in data["threat_types"]} == {"terrorism"}


def test_classify_stdin_json() -> None:
    payload = json.dumps({"id": "a1", "title": "Holiday closure", "text": "The Embassy will be closed."})
    result = runner.invoke(app, ["classify", "-"], input=payload)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == "a1"
    assert data["is_threat"] is False


def test_classify_jsonl_keeps_ids_and_order() -> None:
    lines = [
        {"id": f"x{i}", "title": "", "text": text}
        for i, text in enumerate(
            ["Protests in Nairobi, Kenya.", "Passport appointments.", "Cholera in Lusaka."]
        )
    ]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\nnot json\n"
    result = runner.invoke(app, ["classify", "--jsonl"], input=stdin)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["id"] for r in rows] == ["x0", "x1", "x2", None]
    assert [r.get("is_threat") for r in rows[:3]] == [True, False, True]
    assert "error" in rows[3]


def test_eval_command(fixtures_dir: Path) -> None:
    result = runner.invoke(app, ["eval", str(fixtures_dir / "dev_alerts.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 26
    assert data["threat_types"]["f1"] >= 0.9
    text = runner.invoke(app, ["eval", str(fixtures_dir / "dev_alerts.jsonl")])
    assert text.exit_code == 0
    assert "places" in text.output


def test_bench_command_reports_figures() -> None:
    result = runner.invoke(app, ["classify-bench", "--alerts", "50", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["alerts"] == 50
    assert data["mean_chars"] > 500
    assert data["peak_rss_mb"] > 0
