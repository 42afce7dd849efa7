from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vigil_ingest.detect import detect_kind, parse_input
from vigil_ingest.errors import EmptyInput, InputTooLarge, InvalidInput, UnsupportedContent
from vigil_ingest.feeds import parse_feed

ReadFeed = Callable[[str], bytes]


@pytest.mark.parametrize(
    ("name", "kind", "count"),
    [
        ("embassy-alerts.rss.xml", "rss", 3),
        ("travel-advice.atom.xml", "atom", 2),
        ("cap-earthquake.xml", "cap", 1),
        ("cap-earthquake-update.xml", "cap", 1),
    ],
)
def test_sample_files_are_detected_and_parsed(feed_bytes: ReadFeed, name: str, kind: str, count: int) -> None:
    parsed = parse_input(feed_bytes(name))
    assert parsed.kind == kind
    assert len(parsed.drafts) == count


def test_json_alert_and_list() -> None:
    one = parse_input(
        b'{"title": "Bomb threat", "text": "<p>Evacuate <b>now</b></p>", "url": "https://n.test/1",'
        b' "issuer": "Police", "published": "2024-03-01T10:00:00Z", "severity": "high"}'
    )
    assert one.kind == "json"
    (draft,) = one.drafts
    assert (draft.source_kind, draft.title, draft.text) == ("api", "Bomb threat", "Evacuate now")
    assert draft.issuer == "Police"
    assert draft.extra == {"severity": "high"}
    many = parse_input(b'[{"text": "First alert text"}, {"text": "Second alert text"}]')
    assert [d.text for d in many.drafts] == ["First alert text", "Second alert text"]
    wrapped = parse_input(b'{"alerts": [{"text": "Wrapped"}]}')
    assert wrapped.drafts[0].text == "Wrapped"


def test_plain_text_first_line_becomes_title() -> None:
    (draft,) = parse_input(
        b"Road closed\nThe A1 is closed near the border.\n", content_type="text/plain"
    ).drafts
    assert (draft.source_kind, draft.title, draft.text) == (
        "text",
        "Road closed",
        "The A1 is closed near the border.",
    )
    (single,) = parse_input(b"Shots fired near the station").drafts
    assert (single.title, single.text) == ("", "Shots fired near the station")


def test_html_page_is_cleaned() -> None:
    (draft,) = parse_input(
        b"<html><body><h1>Alert</h1><p>Stay home.</p><script>x()</script></body></html>"
    ).drafts
    assert draft.title == "Alert"
    assert draft.text == "Stay home."


@pytest.mark.parametrize(
    ("data", "content_type", "error", "message"),
    [
        (b"{not json", None, InvalidInput, "malformed JSON"),
        (b'{"title": "no text"}', None, InvalidInput, "text"),
        (b'{"text": "   "}', None, EmptyInput, "text is empty"),
        (b"[]", None, EmptyInput, "empty"),
        (b"[1, 2]", None, InvalidInput, "alert 1"),
        (b'{"text": "x", "published": "2024-01-01T00:00:00"}', None, InvalidInput, "timezone"),
        (b"   \n ", None, EmptyInput, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", None, InvalidInput, "not text"),
        (b"GIF89a", "image/gif", UnsupportedContent, "unsupported content type"),
        (b"<?xml version='1.0'?><svg/>", None, UnsupportedContent, "not RSS, Atom or CAP"),
        (b"<?xml version='1.0'?><rss", None, InvalidInput, "not"),
        (b"[" * 100_000, None, InvalidInput, "malformed JSON"),
    ],
)
def test_bad_input_gets_a_clear_error(
    data: bytes, content_type: str | None, error: type[InvalidInput], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_input(data, content_type=content_type)


def test_size_limit() -> None:
    with pytest.raises(InputTooLarge, match="exceeds the limit"):
        parse_input(b"x" * 2000, max_bytes=1000)


def test_content_type_wins_over_sniffing() -> None:
    assert detect_kind(b'{"text": "x"}', "text/plain") == "text"
    assert detect_kind(b"<rss/>", "application/rss+xml; charset=utf-8") == "rss"
    assert detect_kind(b"<alert/>", "application/xml") == "cap"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_only_ever_raise_invalid_input(data: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_input(data)
    with contextlib.suppress(InvalidInput):
        parse_feed(data)


_TOKENS = [
    "<?xml version='1.0'?>", "<rss version='2.0'>", "<channel>", "<item>", "<title>", "</title>",
    "</item>", "<feed xmlns='http://www.w3.org/2005/Atom'>", "<entry>", "<alert>", "<identifier>",
    "<!DOCTYPE x>", "<!ENTITY a 'b'>", "&a;", "&amp;", "<![CDATA[", "]]>", "<script>", "\x00", "é",
    "{", "}", "[", '"text":', '"x"', "<link href='http://a.test/x.cap' type='application/cap+xml'/>",
    "<sent>2024-01-01</sent>", " ",
]  # fmt: skip
_xmlish = st.lists(st.sampled_from(_TOKENS), max_size=40).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_xmlish)
def test_structured_garbage_only_ever_raises_invalid_input(data: bytes) -> None:
    for content_type in (None, "application/xml", "application/json", "text/html"):
        with contextlib.suppress(InvalidInput):
            parse_input(data, content_type=content_type)
