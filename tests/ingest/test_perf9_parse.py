"""The JSON array fast path of parse_input (the ninth session's: one validate_json of the whole body,
drafts made without validating again) gives the drafts and the refusals of the item-by-item path.

The item-by-item path is reached with the same items as ``{"alerts": [...]}`` (same ``alert N:``
prefixes), which the fast path does not take."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from vigil_ingest import detect
from vigil_ingest.detect import parse_input
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput
from vigil_shared.bench import make_texts


def _outcome(body: bytes) -> tuple[str, Any]:
    try:
        drafts = parse_input(body, content_type="application/json", source_name="api")
    except InvalidInput as exc:
        return type(exc).__name__, (exc.status_code, str(exc))
    return "drafts", [_shape(d) for d in drafts.drafts]


def _shape(draft: AlertDraft) -> tuple[Any, ...]:
    values = draft.model_dump()
    return (values, {k: type(v) for k, v in values.items()}, draft.model_fields_set, draft)


def _both(items: list[Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    fast = json.dumps(items).encode()
    slow = json.dumps({"alerts": items}).encode()
    return _outcome(fast), _outcome(slow)


def _odd_items(rnd: random.Random) -> list[dict[str, Any]]:
    values: dict[str, list[Any]] = {
        "title": ["", "  Title  with\tblanks ", "Update: Rally", "<b>bold</b> title", "\u00e9t\u00e9"],
        "text": [
            "Plain text of an alert.",
            "<p>An <a href='https://x.test/?utm_source=a'>HTML</a> text</p>",
            "x" * 300,
        ],
        "url": [None, "", "  https://x.test/a  ", "javascript:alert(1)", "HTTP://X.TEST", "ftp://x.test"],
        "issuer": [None, "", " Desk\u00a0 Name "],
        "published": [None, "2024-03-07T18:20:00Z", "2024-03-07T18:20:00.5+05:30", 1700000000, "1700000000"],
        "language": [None, "", "fr-FR", "xx-invalid-tag", "de"],
        "source": [None, "feed-a", ""],
        "id": [None, "", "  guid-1 ", 42, "https://x.test/item#v2", "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"],
        "extra": [None, 1.5, [1, {"a": None}], {"k": "v"}, "s", 2**70, True],
    }
    items = []
    for _ in range(60):
        item: dict[str, Any] = {}
        for key, choices in values.items():
            value = rnd.choice(choices)
            if value is not None or rnd.random() < 0.5:
                item[key] = value
        item.setdefault("text", "A text.")
        items.append(item)
    return items


def test_bench_bodies_take_the_fast_path_and_give_the_same_drafts() -> None:
    items = [
        {"id": f"b-{i}", "title": t, "text": x, "issuer": "Benchmark Desk"} for i, (t, x) in enumerate(make_texts(120))
    ]
    body = orjson.dumps(items)
    assert detect._valid_list(body, body.decode()) is not None
    fast, slow = _both(items)
    assert fast[0] == "drafts"
    assert fast == slow


def test_odd_items_give_the_same_drafts() -> None:
    rnd = random.Random(4)
    for _ in range(5):
        items = _odd_items(rnd)
        body = json.dumps(items).encode()
        assert detect._valid_list(body, body.decode()) is not None
        fast, slow = _both(items)
        assert fast == slow


@pytest.mark.parametrize(
    "bad",
    [
        {"text": ""},
        {"text": "   "},
        {"title": "t"},
        {"text": 5},
        {"text": "ok", "published": "2024-03-07T18:20:00"},
        {"text": "ok", "id": 1.5},
        {"text": "ok", "url": ["x"]},
        "not an object",
        None,
        {"text": "<script>only a script</script>"},
    ],
)
def test_refusals_are_the_item_by_item_ones(bad: Any) -> None:
    items = [{"text": "fine"}, bad, {"text": ""}]
    fast, slow = _both(items)
    assert fast[0] != "drafts"
    assert fast == slow


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"text": "a\x01b"}]',
        b'[{"text": "a"},]',
        b'[{"text": "a"}] trailing',
        b'\x0c[{"text": "a"}]',
        b'[{"text": "lone \\ud800 surrogate"}]',
        b'[{"text": "a", "x": NaN}]',
        b"[" + b"[" * 400 + b"]" * 400 + b"]",
        b'\xef\xbb\xbf[{"text": "BOM body"}]',
        '[{"text": "utf-16 body"}]'.encode("utf-16"),
        b' \n [{"text": "leading blanks", "text": "duplicate key"}]',
    ],
)
def test_odd_bodies_as_before(body: bytes) -> None:
    # the reference: the item-by-item path alone (the fast path switched off)
    expected = _with_fast_path_off(body)
    assert _outcome(body) == expected


def _with_fast_path_off(body: bytes) -> tuple[str, Any]:
    saved = detect._valid_list
    detect._valid_list = lambda data, raw: None
    try:
        return _outcome(body)
    finally:
        detect._valid_list = saved
