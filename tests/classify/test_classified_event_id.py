"""classify's ``_event_id`` is ``vigil_shared.events.new_event_id`` (``uuid.uuid4().hex``) written by byte."""

from __future__ import annotations

import os
import uuid

import pytest
from vigil_classify import service


def test_same_bits_as_uuid4_for_the_same_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [os.urandom(16) for _ in range(2000)] + [b"\x00" * 16, b"\xff" * 16, bytes(range(16))]
    for raw in samples:
        monkeypatch.setattr(service, "urandom", lambda n, raw=raw: raw)
        assert service._event_id() == uuid.UUID(bytes=raw, version=4).hex


def test_format_and_uniqueness() -> None:
    ids = {service._event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for i in list(ids)[:500]:
        u = uuid.UUID(hex=i)
        assert (len(i), u.version, u.variant, u.hex) == (32, 4, uuid.RFC_4122, i)
