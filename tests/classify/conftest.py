from __future__ import annotations

import json
from pathlib import Path

import pytest
from vigil_classify.engine import Classifier
from vigil_shared.events import AlertReceived, CapInfo, classified_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def fixture_texts() -> list[str]:
    """The classified text (title and text, as classify reads them) of every alert in the fixture files."""
    out = []
    for path in sorted(FIXTURES.glob("*_alerts.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out.append(classified_text(str(item.get("title", "")), str(item.get("text", ""))))
    return out


@pytest.fixture(scope="session")
def dev_received() -> list[AlertReceived]:
    """The dev fixture's alerts as ingest publishes them: every third with CAP values (which win over
    the text's), non-ASCII correlation ids (the JSON must still match byte for byte)."""
    alerts = []
    lines = (FIXTURES / "dev_alerts.jsonl").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(x for x in lines if x.strip()):
        item = json.loads(line)
        cap = None
        if i % 3 == 0:
            cap = CapInfo(identifier=f"cap-{i}", sender="s@example.org", sent="2026-01-01T00:00:00Z",
                          urgency="Future", severity="Minor", certainty="Possible")  # fmt: skip
        alerts.append(
            AlertReceived(
                correlation_id=f"corr-{i}-\u00e9",
                producer="ingest",
                alert_id=str(item.get("id") or f"a{i}"),
                source_kind="text",
                source_name="dev",
                issuer=item.get("issuer"),
                title=str(item.get("title", "")),
                text=str(item.get("text") or "x"),
                cap=cap,
            )
        )
    return alerts
