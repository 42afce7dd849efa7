"""Rendering once per (alert, kind) gives exactly the message of a full render per delivery."""

from __future__ import annotations

import pytest
from vigil_notify.rendering import _REASON_MARK, Renderer

from .helpers import make_alert

HOSTILE = ['matched: <b>Moscow</b> & "friends" *x* _y_ [z](u)', "plain", "", "a\x00b"]


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
@pytest.mark.parametrize("reason", HOSTILE)
@pytest.mark.parametrize("name", ["Trip <Moscow> & 'co' *md*", "x"])
def test_prepared_equals_full_render(kind: str, reason: str, name: str) -> None:
    r = Renderer()
    alert = make_alert(title="<script>alert(1)</script> *bold* & co", text="Text with <i>tags</i> & [md](x)")
    full = r.render(alert, kind=kind, reason=reason, subscription_id="s1", subscription_name=name,
                    idempotency_key="k1")  # fmt: skip
    fast = r.prepare(alert, kind=kind).render(reason=reason, subscription_id="s1", subscription_name=name,
                                               idempotency_key="k1")  # fmt: skip
    assert (fast.title, fast.text, fast.markdown, fast.html) == (full.title, full.text, full.markdown, full.html)
    assert {k: v for k, v in fast.payload.items() if k != "sent_at"} == {
        k: v for k, v in full.payload.items() if k != "sent_at"
    }
    assert list(fast.payload) == list(full.payload)
    assert fast.idempotency_key == full.idempotency_key


def test_alert_quoting_a_stand_in_takes_the_full_render() -> None:
    r = Renderer()
    alert = make_alert(text=f"quoting {_REASON_MARK} here")
    fast = r.prepare(alert, kind="new").render(reason="R", subscription_id="s", subscription_name="N")
    assert _REASON_MARK in fast.text
    assert "quoting" in fast.text


def test_custom_templates_take_the_full_render() -> None:
    r = Renderer(templates={"body.txt": "{{ reason | upper }} {{ subscription_name }}"})
    fast = r.prepare(make_alert(), kind="new").render(reason="why", subscription_id="s", subscription_name="N")
    assert fast.text == "WHY N"
