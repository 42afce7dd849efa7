"""The notifier's own copies of small helpers (written so the compiled notifier makes no interpreted
call per delivery) give what the originals give."""

from __future__ import annotations

import random

import pytest
from vigil_notify.delivery import idempotency_key
from vigil_notify.notifier import HandleResult, Target, _idempotency_key, idempotency_head

from .helpers import make_sub

HOSTILE = ["", "a", "\x1f", "a\x1fb", "Zürich — ünïcödé", "jsonl:///tmp/x y.jsonl", "\x00", "😀" * 3, "1"]


def test_idempotency_key_from_the_head_is_the_delivery_modules() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        aid, sub, url = (rnd.choice(HOSTILE) + rnd.choice(HOSTILE) for _ in range(3))
        rev = rnd.choice([0, 1, 2, 17, 10**12, -1])
        assert _idempotency_key(idempotency_head(aid, rev), sub, url) == idempotency_key(aid, rev, sub, url)


def test_idempotency_key_of_a_lone_surrogate_raises_as_the_delivery_modules() -> None:
    with pytest.raises(UnicodeEncodeError):
        idempotency_key("a\ud800", 1, "s", "u")
    with pytest.raises(UnicodeEncodeError):
        _idempotency_key(idempotency_head("a\ud800", 1), "s", "u")


def test_handle_result_defaults_are_fresh_lists_and_keywords_are_kept() -> None:
    a, b = HandleResult(), HandleResult()
    a.events.append(None)  # type: ignore[arg-type]
    assert b.events == []
    assert (a.dead_letters, a.matches, a.deferred, a.digested, a.duplicates, a.skipped, a.outcomes) == ([],) * 7
    assert a.encoded == {}
    assert a.encoded is not b.encoded
    got = HandleResult(digested=[("s", "c")], skipped=[("s", "c", "skipped_sent")])
    assert got.digested == [("s", "c")]
    assert got.skipped == [("s", "c", "skipped_sent")]
    assert "skipped_sent" in repr(got)


def test_target_of_reads_the_subscription_and_repr_masks_the_url() -> None:
    sub = make_sub("s1", ["webhook+https://user:secret@example.org/hook"])
    t = Target.of(sub, sub.channels[0], "new", "why")
    assert (t.subscription, t.subscription_id, t.subscription_name, t.quiet_hours) == (sub, "s1", sub.name, None)
    assert (t.channel_url, t.kind, t.reason) == (sub.channels[0], "new", "why")
    assert "secret" not in repr(t)


def test_publication_made_without_its_init_is_the_dataclasses() -> None:
    import dataclasses

    from vigil_notify.notifier import _publication
    from vigil_shared.worker import Publication

    event = make_sub("s1")  # any object: the publication only holds it
    for data in (None, b"", b"data"):
        got = _publication("vigil.notifications", event, data)  # type: ignore[arg-type]
        want = Publication("vigil.notifications", event, data)  # type: ignore[arg-type]
        assert type(got) is Publication
        assert got == want
        assert (got.stream, got.event, got.data) == ("vigil.notifications", event, data)
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.stream = "other"  # type: ignore[misc]


def test_filled_message_made_without_its_init_is_the_classes() -> None:
    from vigil_notify.filled import FilledMessage
    from vigil_notify.rendering import Renderer, _filled

    from .helpers import make_alert

    prepared = Renderer().prepare(make_alert(), kind="new", sent_at="2026-11-26T08:00:00+00:00")
    for args in [("why", "s1", "Name", "k" * 32), ("", "", "", ""), ("Zürich 😀", "s\x1f2", 'a "b"', "key")]:
        got = _filled(prepared, *args)
        want = FilledMessage(prepared, *args)
        assert type(got) is FilledMessage
        assert list(got.__dict__.items()) == list(want.__dict__.items())
        assert got.json_line_bytes() == want.json_line_bytes()
        assert (got.title, got.text, got.markdown, got.html) == (want.title, want.text, want.markdown, want.html)
        assert got.payload == want.payload


def test_delivery_outcome_defaults_are_fresh_lists_and_keywords_are_kept() -> None:
    from vigil_notify.delivery import DeliveryOutcome

    a, b = DeliveryOutcome("job", "failed"), DeliveryOutcome("job", "failed")
    a.events.append(None)  # type: ignore[arg-type]
    assert b.events == []
    assert (a.job, a.status, a.dead_letter, a.data) == ("job", "failed", None, None)
    got = DeliveryOutcome(job="j", status="delivered", events=[], dead_letter=None, data=b"x")
    assert got == DeliveryOutcome("j", "delivered", [], None, b"x")
    assert got != DeliveryOutcome("j", "delivered", [], None, b"y")
    got.status, got.data = "failed", None  # the deliverer updates an outcome in place
    assert (got.status, got.data) == ("failed", None)
    assert "status='failed'" in repr(got)
