"""Hostile content: script in alerts is escaped in every rendering; control characters cannot forge
log lines; secrets never reach logs."""

from __future__ import annotations

import json

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


def test_newlines_cannot_forge_json_log_lines(capsys) -> None:
    configure_logging("INFO", "json", "test")
    forged = 'real title\n{"level": "info", "event": "admin logged in"}\r\x1b[2J'
    structlog.get_logger("t").warning("alert refused", reason=forged)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "alert refused"
    assert "\n" not in record["reason"]
    assert "\x1b" not in record["reason"]


def test_newlines_cannot_forge_console_log_lines(capsys) -> None:
    configure_logging("INFO", "console", "test")
    structlog.get_logger("t").warning("alert refused", reason="x\n2026-01-01 [info] forged line")
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    configure_logging("INFO", "json", "test")
