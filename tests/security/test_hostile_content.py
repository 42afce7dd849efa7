"""Hostile content: script in alerts is escaped in every rendering; control characters cannot forge
log lines; secrets never reach logs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest
import structlog
from notify.helpers import make_alert
from vigil_notify.rendering import Renderer
from vigil_shared.logging import configure_logging

SCRIPT = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def test_script_in_a_feed_item_is_escaped_in_html_and_markdown() -> None:
    alert = make_alert(title=f"Protest {SCRIPT}", text=f"Avoid the centre. {SCRIPT} [x](javascript:alert(1))",
                       url="javascript:alert(1)")  # fmt: skip
    msg = Renderer().render(alert, kind="new", reason="r", subscription_id="s", subscription_name="S")
    assert "<script" not in msg.html
    assert "onerror=alert" not in msg.html.replace("onerror=alert(1)&gt;", "")  # only as escaped text
    assert "&lt;script&gt;" in msg.html
    assert 'href="javascript:' not in msg.html
    assert "](javascript:" not in msg.markdown


@pytest.fixture
def log_output() -> Iterator[Callable[[str], io.StringIO]]:
    """Configure logging the way services do, into a buffer; restore the previous configuration."""
    saved = structlog.get_config()

    def configure(fmt: str) -> io.StringIO:
        buf = io.StringIO()
        configure_logging("INFO", fmt, "test")
        # same processors, but into the buffer and without caching loggers beyond this test
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buf), cache_logger_on_first_use=False)
        return buf

    yield configure
    structlog.configure(**saved)
    structlog.contextvars.clear_contextvars()


def test_newlines_cannot_forge_json_log_lines(log_output: Callable[[str], io.StringIO]) -> None:
    buf = log_output("json")
    forged = 'real title\n{"level": "info", "event": "admin logged in"}\r\x1b[2J'
    structlog.get_logger("t").warning("alert refused", reason=forged)
    lines = buf.getvalue().strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "alert refused"
    assert "\n" not in record["reason"]
    assert "\x1b" not in record["reason"]


def test_newlines_cannot_forge_console_log_lines(log_output: Callable[[str], io.StringIO]) -> None:
    buf = log_output("console")
    structlog.get_logger("t").warning("alert refused", reason="x\n2026-01-01 [info] forged line")
    assert len(buf.getvalue().strip().splitlines()) == 1


@pytest.mark.parametrize("link", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<script>x</script>",
                                  "vbscript:msgbox(1)", "file:///etc/passwd"])  # fmt: skip
def test_non_web_links_are_dropped_at_ingest(link: str) -> None:
    """Regression (found by tests/security/test_e2e_hostile.py): an RSS ``<link>javascript:...`` travelled
    as the alert's ``url`` to every consumer (JSONL, webhooks, CAP). Only http(s) links are kept."""
    from vigil_ingest.detect import parse_input
    from vigil_ingest.feeds import parse_feed

    rss = (
        "<rss version='2.0'><channel><title>f</title><item><title>Bomb threat in Moscow</title>"
        f"<link>{link.replace('<', '&lt;')}</link><description>Police evacuated the metro.</description></item>"
        "</channel></rss>"
    ).encode()
    [draft] = parse_feed(rss).drafts
    assert draft.url is None
    posted = json.dumps({"title": "Bomb threat", "text": "Police evacuated the metro.", "url": link}).encode()
    [draft] = parse_input(posted, content_type="application/json").drafts
    assert draft.url is None
    ok = json.dumps({"title": "t", "text": "x", "url": "https://embassy.example/a"}).encode()
    assert parse_input(ok, content_type="application/json").drafts[0].url == "https://embassy.example/a"
