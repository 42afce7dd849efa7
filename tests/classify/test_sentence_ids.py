"""``sentence_ids`` puts two positions in one sentence exactly when ``sentence_starts`` does."""

from __future__ import annotations

import bisect
import json
import random
from pathlib import Path

from vigil_classify.benchmark import make_alerts
from vigil_classify.taxonomy import sentence_ids, sentence_starts
from vigil_shared.events import classified_text

_PIECES = (
    " ", "  ", "\n", "\n\n", ". ", ".", "..", "! ", "? ", "; ", ";", ".\n", '." ', ".) ", ".’ ", "”", ")",
    "U.S.", "U.S. ", "A. ", "St. ", " St. ", "Mr. ", " Mrs. ", " Dr.", " No. ", " Mt. ", " vs. ", "Gen. ",
    "word", "Word", "x", "É.", " é. ", "İ. ", "3.5", "e.g. ", "Jr. ", "the", "AB. ", "St.\n", "Mr.! ",
)  # fmt: skip


def _check(text: str, positions: list[int]) -> None:
    ids = sentence_ids(text, positions)
    if any(not text[p].isalnum() for p in positions):
        assert ids is None
        return
    assert ids is not None
    starts = sentence_starts(text)
    ref = {p: bisect.bisect_right(starts, p) - 1 for p in positions}
    for p in positions:
        for q in positions:
            assert (ids[p] == ids[q]) == (ref[p] == ref[q]), (text, p, q)


def test_random_texts() -> None:
    rnd = random.Random(11)
    for _ in range(4000):
        text = "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 30)))
        alnum = [i for i, c in enumerate(text) if c.isalnum()]
        if not alnum:
            continue
        _check(text, rnd.sample(alnum, min(len(alnum), rnd.randint(1, 8))))


def test_fixtures_and_generated_alerts(fixtures_dir: Path) -> None:
    rnd = random.Random(12)
    texts = [classified_text(title, text) for title, text in make_alerts(300, seed=31)]
    for path in sorted(fixtures_dir.glob("*_alerts.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                texts.append(classified_text(str(item.get("title", "")), str(item.get("text", ""))))
    for text in texts:
        alnum = [i for i, c in enumerate(text) if c.isalnum()]
        for _ in range(3):
            _check(text, rnd.sample(alnum, min(len(alnum), 12)))


def test_a_position_that_is_not_alphanumeric_gives_none() -> None:
    assert sentence_ids("Hello. World", [0, 5]) is None
    assert sentence_ids("Hello. World", [0, 7]) == {0: 0, 7: 1}
    assert sentence_ids("Hello", []) == {}
