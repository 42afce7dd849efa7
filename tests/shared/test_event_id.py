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
        events._EVENT_IDS.clear()  # ids already made from earlier random bytes
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


def test_one_random_read_makes_many_ids_each_its_own_16_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = os.urandom(16 * events._EVENT_ID_BATCH)
    reads: list[int] = []

    def urandom(n: int) -> bytes:
        reads.append(n)
        return raw

    monkeypatch.setattr(events.os, "urandom", urandom)
    events._EVENT_IDS.clear()
    got = [new_event_id() for _ in range(events._EVENT_ID_BATCH)]
    assert reads == [16 * events._EVENT_ID_BATCH]
    assert got == [uuid.UUID(bytes=raw[i : i + 16], version=4).hex for i in range(0, len(raw), 16)]
    new_event_id()  # the next one: a new read
    assert len(reads) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_never_repeats_the_parents_ids() -> None:
    new_event_id()  # the parent holds unused ids now
    assert events._EVENT_IDS
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        try:
            os.write(write_end, new_event_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    assert len(child_id) == 32
    assert child_id not in events._EVENT_IDS
    assert new_event_id() != child_id
