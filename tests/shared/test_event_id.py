"""``new_event_id`` is ``uuid.uuid4().hex`` without the ``UUID`` object: same bits, same format."""

from __future__ import annotations

import os
import uuid

import pytest
from vigil_shared import events
from vigil_shared.events import AlertReceived, new_event_id


def test_same_bits_as_uuid4_for_the_same_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [os.urandom(16) for _ in range(2000)] + [b"\x00" * 16, b"\xff" * 16, bytes(range(16))]
    for raw in samples:
        monkeypatch.setattr(events.os, "urandom", lambda n, raw=raw: raw)
        assert new_event_id() == uuid.UUID(bytes=raw, version=4).hex


def test_format_and_uniqueness() -> None:
    ids = {new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for i in list(ids)[:500]:
        assert len(i) == 32
        assert i == i.lower()
        u = uuid.UUID(hex=i)
        assert u.version == 4
        assert u.variant == uuid.RFC_4122
        assert u.hex == i


def test_events_get_one() -> None:
    a = AlertReceived(correlation_id="c", producer="p", alert_id="a", source_kind="api", source_name="s", text="t")
    assert uuid.UUID(hex=a.event_id).version == 4
