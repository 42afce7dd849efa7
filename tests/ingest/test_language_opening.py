"""Language identification decides on a text's opening (``OPENING_CHARS``) when it settles it.

The bound is checked where it matters: over the dev fixture and the holdouts, the tags are those of
reading the whole text, with the bound and with a quarter of it (most alerts there are cut)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vigil_ingest import cleaning
from vigil_ingest.cleaning import MAX_SAMPLE_CHARS, OPENING_CHARS, detect_language, detect_languages
from vigil_ingest.detect import parse_input

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FILES = ("dev_alerts.jsonl", "holdout_alerts.jsonl", "holdout2_alerts.jsonl", "holdout3_alerts.jsonl")

GERMAN = (
    "Die Botschaft warnt vor möglichen Anschlägen in der Innenstadt. Meiden Sie Menschenansammlungen, "
    "verfolgen Sie die örtlichen Medien und folgen Sie den Anweisungen der Sicherheitskräfte. "
)
ENGLISH = (
    "The embassy warns of possible attacks in the city centre this weekend. Avoid crowds, monitor "
    "local media and follow the instructions of the local authorities. "
)


def _fixture_body() -> bytes:
    alerts = []
    for name in FILES:
        for line in (FIXTURES / name).read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                alerts.append({k: record[k] for k in ("title", "text", "issuer") if record.get(k)})
    return json.dumps(alerts).encode()


def _tags(monkeypatch: pytest.MonkeyPatch, opening: int) -> list[str | None]:
    monkeypatch.setattr(cleaning, "OPENING_CHARS", opening)
    drafts = parse_input(_fixture_body(), content_type="application/json").drafts
    return [d.language for d in drafts]


def test_fixture_languages_are_those_of_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    drafts = parse_input(_fixture_body(), content_type="application/json").drafts
    assert len(drafts) == 74
    samples = [f"{d.title}\n{d.text}" if d.title else d.text for d in drafts]
    whole = _tags(monkeypatch, MAX_SAMPLE_CHARS)
    assert None not in whole
    assert _tags(monkeypatch, OPENING_CHARS) == whole
    # the margin: a quarter of the bound already gives the same tags, and cuts nearly every alert
    assert sum(len(s.strip()) > OPENING_CHARS // 4 for s in samples) >= 70
    assert _tags(monkeypatch, OPENING_CHARS // 4) == whole


def test_an_opening_that_does_not_settle_it_is_followed_by_the_whole_text() -> None:
    opening = ("12345 67890 !!! " * 40)[:OPENING_CHARS]
    assert detect_language(opening) is None
    assert detect_languages([opening + GERMAN * 3]) == ["de"]


def test_a_settled_opening_decides_for_a_text_that_changes_language_later(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ENGLISH * 5)[:OPENING_CHARS] + GERMAN * 20  # the documented price of the bound
    assert detect_language(text) == "en"
    monkeypatch.setattr(cleaning, "OPENING_CHARS", MAX_SAMPLE_CHARS)
    assert detect_language(text) == "de"  # what reading the whole sample says: its bulk is German
