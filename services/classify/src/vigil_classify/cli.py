"""``vigil classify``, ``vigil eval`` and ``vigil classify-bench`` (registered through the
``vigil.commands`` entry point)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def _read_input(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8")


def _classify_one(clf: Any, data: dict[str, Any]) -> dict[str, Any]:
    raw_cap = data.get("cap")
    cap: dict[str, Any] = raw_cap if isinstance(raw_cap, dict) else {}
    result = clf.classify(
        str(data.get("text") or ""),
        title=str(data.get("title") or ""),
        issuer=data.get("issuer"),
        alert_id=str(data.get("id") or ""),
        cap_urgency=cap.get("urgency"),
        cap_severity=cap.get("severity"),
        cap_certainty=cap.get("certainty"),
    )
    out: dict[str, Any] = result.model_dump(mode="json")
    return out


def classify_command(
    source: Annotated[str, typer.Argument(help="A text/JSON file, or - for stdin.")] = "-",
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help='Read {"id","title","text"} lines on stdin.')
    ] = False,
    title: Annotated[str, typer.Option(help="Title of a plain-text alert.")] = "",
    issuer: Annotated[str | None, typer.Option(help="Issuer of a plain-text alert.")] = None,
) -> None:
    """Classify an alert and print the classification as JSON."""
    from vigil_classify.engine import Classifier

    clf = Classifier()
    if jsonl:
        lines = sys.stdin if source == "-" else Path(source).read_text(encoding="utf-8").splitlines()
        out = sys.stdout
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not an object")
                row = _classify_one(clf, item)
            except (ValueError, TypeError) as exc:
                row = {"id": None, "error": f"invalid input line: {exc}"}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        return
    raw = _read_input(source)
    data: dict[str, Any]
    try:
        parsed = json.loads(raw)
        data = parsed if isinstance(parsed, dict) and "text" in parsed else {"text": raw}
    except ValueError:
        data = {"text": raw}
    data.setdefault("title", title)
    if issuer is not None:
        data.setdefault("issuer", issuer)
    typer.echo(json.dumps(_classify_one(clf, data), indent=2, ensure_ascii=False))


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="Labelled JSON lines (LABELS.md format).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    worst: Annotated[int, typer.Option(help="How many worst items to list.")] = 8,
) -> None:
    """Score the classifier against a labelled dataset."""
    from vigil_classify.evaluation import evaluate, format_report, load_dataset

    report = evaluate(load_dataset(dataset))
    if as_json:
        typer.echo(json.dumps(report.as_dict(worst), indent=2))
    else:
        typer.echo(format_report(report, worst))


def bench_command(
    alerts: Annotated[int, typer.Option("--alerts", "-n", help="How many generated alerts.")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Benchmark the classifier on one core: alerts/s, start-up time, peak RSS."""
    from vigil_classify.benchmark import run

    r = run(alerts)
    figures = {
        "alerts": r.alerts,
        "mean_chars": round(r.mean_chars),
        "seconds": round(r.seconds, 3),
        "alerts_per_s": round(r.alerts_per_s),
        "cpu_seconds": round(r.cpu_seconds, 3),
        "alerts_per_cpu_s": round(r.alerts_per_cpu_s),
        "startup_s": round(r.startup_s, 3),
        "startup_cpu_s": round(r.startup_cpu_s, 3),
        "peak_rss_mb": round(r.peak_rss_mb, 1),
    }
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        for k, v in figures.items():
            typer.echo(f"{k:14} {v}")


def compile_command() -> None:
    """Compile the classifier's hot modules with mypyc (needs mypy and a C compiler): later
    processes use the build while the source is unchanged (VIGIL_CLASSIFY_NATIVE=0: never)."""
    from vigil_classify import native

    target = native.build()
    typer.echo(str(target))


def register(app: typer.Typer) -> None:
    """Add the classify commands to the ``vigil`` CLI."""
    app.command("classify")(classify_command)
    app.command("eval")(eval_command)
    app.command("classify-bench")(bench_command)
    app.command("classify-compile")(compile_command)
