"""``decode_body`` (the consume path's body slice) returns what ``decode_entry`` returns, for Vigil's
entries and for the odd ones (legacy JSON envelope, raw value, broken binary), and refuses the same."""

from __future__ import annotations

import json
from struct import pack

import pytest
from vigil_shared.envelope import (
    DATA_FIELD,
    MalformedEntry,
    decode_body,
    decode_entry,
    encode_event_faststream,
    encode_event_sync,
)
from vigil_shared.events import AlertReceived, NotificationDelivered

MAGIC = b"\x89BIN\r\n\x1a\n"


def _alert(corr: str, text: str = "Protests in Paris.") -> AlertReceived:
    return AlertReceived(correlation_id=corr, producer="t", alert_id="a", source_kind="api", source_name="s", text=text)


@pytest.mark.parametrize("corr", ["corr-1", "", "x" * 300])
async def test_vigil_and_faststream_entries(corr: str) -> None:
    for ev in (
        _alert(corr),
        _alert(corr, text="ünïcode Москва " * 50),
        NotificationDelivered(
            correlation_id=corr, producer="n", alert_id="a", subscription_id="s", channel="c", idempotency_key="k"
        ),
    ):
        for fields in (encode_event_sync(ev), await encode_event_faststream(ev)):
            assert decode_body(fields) == decode_entry(fields)[0] == ev.model_dump_json().encode()


def test_non_ascii_header_values_are_read_by_byte_offsets() -> None:
    # FastStream's parser misreads such entries (header lengths in characters); the data offset is right
    ev = _alert("Москва-ünïcode")
    assert decode_body(encode_event_sync(ev)) == ev.model_dump_json().encode()


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"data": '{"a": 1}', "headers": {"x": "y"}}).encode(),  # legacy JSON envelope
        b'{"not": "an envelope"}',  # raw value
        b"plain text",
        b"",
        MAGIC,  # magic only
        MAGIC + b"\x00\x01",  # no offsets
        MAGIC + b"\x00\x02" + pack(">II", 18, 20) + b"\x00\x00{}",  # unknown version
        MAGIC + b"\x00\x01" + pack(">II", 18, 999) + b"\x00\x00{}",  # data offset past the end
        MAGIC + b"\x00\x01" + pack(">II", 3, 20) + b"\x00\x00{}",  # headers start inside the offsets
        MAGIC + b"\x00\x01" + pack(">II", 30, 20) + b"\x00\x00{}",  # data before the headers
        b"\x89BIN\r\n\x1a\nbroken",
    ],
)
def test_odd_entries_take_faststreams_path(data: bytes) -> None:
    fields = {DATA_FIELD: data}
    assert decode_body(fields) == decode_entry(fields)[0]


def test_an_entry_without_data_is_malformed() -> None:
    with pytest.raises(MalformedEntry, match="no __data__ field"):
        decode_body({b"garbage": b"yes"})
