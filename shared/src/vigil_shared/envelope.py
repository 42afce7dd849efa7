"""Stream entries in FastStream's own envelope, so FastStream subscribers and Vigil's tools agree.

An entry is ``{"__data__": <FastStream binary message v1>}`` whose body is the event's JSON and whose
headers carry ``correlation_id``, ``content-type`` and ``event_type``.
"""

from __future__ import annotations

import base64
from struct import Struct, pack
from typing import Any

from faststream.redis.parser.binary import BinaryMessageFormatV1

from vigil_shared.events import Event

DATA_FIELD = b"__data__"


class MalformedEntry(ValueError):
    """A stream entry that is not a FastStream-enveloped message."""


_MAGIC = BinaryMessageFormatV1.IDENTITY_HEADER
_HEADERS_START = len(_MAGIC) + 2 + 8  # magic, version (short), two offsets (int)


def _header_string(value: str) -> bytes:
    # FastStream writes the length in characters (``len(str)``), then the UTF-8 bytes; kept as is
    # so entries stay byte-identical to FastStream's own (they differ only for non-ASCII values).
    return pack(">H", len(value)) + value.encode()


_CORRELATION_ID_KEY = _header_string("correlation_id")
_CONTENT_TYPE_HEADER = _header_string("content-type") + _header_string("application/json")
_EVENT_TYPE_KEY = _header_string("event_type")


def encode_data(event: Event) -> bytes:
    """The ``__data__`` value of ``event``'s entry: byte-identical to FastStream's
    ``BinaryMessageFormatV1.encode`` of the event's JSON with headers ``correlation_id``,
    ``content-type``, ``event_type`` (in that order), without its per-message codec and writer objects."""
    return encode_json(event, event.model_dump_json().encode())


def encode_json(event: Event, body: bytes) -> bytes:
    """:func:`encode_data` with the event's JSON already serialised: ``body`` must be
    ``event.model_dump_json().encode()`` (e.g. from a serialiser that writes bytes, without the
    round trip through ``str``)."""
    return encode_body(event.correlation_id, event.event_type, body)


def encode_body(correlation_id: str, event_type: str, body: bytes) -> bytes:
    """The ``__data__`` value of an event of type ``event_type`` whose JSON is ``body``, without an
    event object (a producer that writes the JSON itself; it must be the JSON of a valid event of
    that type with that ``correlation_id``)."""
    tail = _HEADERS_AFTER_CORRELATION_ID.get(event_type)
    if tail is None:
        tail = _CONTENT_TYPE_HEADER + _EVENT_TYPE_KEY + _header_string(event_type)
        if len(_HEADERS_AFTER_CORRELATION_ID) < 64:  # a handful of event types
            _HEADERS_AFTER_CORRELATION_ID[event_type] = tail
    cid = correlation_id.encode()
    headers_len = len(_CORRELATION_ID_KEY) + 2 + len(cid) + len(tail)
    return b"".join(
        (
            _MAGIC,
            pack(">HIIH", 1, _HEADERS_START, 2 + _HEADERS_START + headers_len, 3),
            _CORRELATION_ID_KEY,
            pack(">H", len(correlation_id)),  # in characters: see _header_string
            cid,
            tail,
            body,
        )
    )


_HEADERS_AFTER_CORRELATION_ID: dict[str, bytes] = {}
"""Per event type: the content-type and event_type headers, which follow the correlation id."""


def encode_event_sync(event: Event) -> dict[bytes, bytes]:
    """The entry for ``event``: ``{"__data__": encode_data(event)}``."""
    return {DATA_FIELD: encode_data(event)}


async def encode_event(event: Event) -> dict[bytes, bytes]:
    return encode_event_sync(event)


async def encode_event_faststream(event: Event) -> dict[bytes, bytes]:
    """The reference encoding through FastStream (tests compare :func:`encode_event` with it)."""
    payload = await BinaryMessageFormatV1.encode(
        message=event.model_dump_json().encode(),
        reply_to=None,
        headers={"content-type": "application/json", "event_type": event.event_type},
        correlation_id=event.correlation_id,
    )
    return {DATA_FIELD: payload}


def decode_entry(fields: dict[bytes, bytes]) -> tuple[bytes, dict[str, Any]]:
    """The body bytes and headers of an entry; :class:`MalformedEntry` with a reason otherwise."""
    data = fields.get(DATA_FIELD)
    if data is None:
        names = ", ".join(sorted(k.decode("utf-8", "replace") for k in fields)) or "none"
        raise MalformedEntry(f"entry has no __data__ field (fields: {names}); it was not written by Vigil")
    try:
        return BinaryMessageFormatV1.parse(data)
    except Exception as exc:  # the format raises assorted errors on garbage
        raise MalformedEntry(f"entry's __data__ is not a FastStream message: {exc!r}") from exc


_MAGIC_V1 = _MAGIC + pack(">H", 1)
_OFFSETS_END = _HEADERS_START  # magic (8), version (2), headers start (4), data start (4)


def decode_body(fields: dict[bytes, bytes]) -> bytes:
    """The body bytes of an entry: what ``decode_entry(fields)[0]`` returns, without parsing the
    headers (the consume path does not use them).

    For a well-formed v1 envelope (magic, version 1, data offset inside the entry and past the
    headers' start) the body is the slice after the data offset, as FastStream's parser reads it.
    Anything else takes :func:`decode_entry`'s path (legacy JSON envelope, raw value, or
    :class:`MalformedEntry`), so the outcome for odd entries is FastStream's.
    """
    data = fields.get(DATA_FIELD)
    if type(data) is bytes and data.startswith(_MAGIC_V1) and len(data) >= _OFFSETS_END:
        headers_start, data_start = _unpack_offsets(data, 10)
        if _OFFSETS_END <= headers_start <= data_start <= len(data):
            return data[data_start:]
    return decode_entry(fields)[0]


_unpack_offsets = Struct(">II").unpack_from


def fields_to_text(fields: dict[bytes, bytes]) -> dict[str, str]:
    """Entry fields as text for a dead-letter record; binary values become ``base64:...``."""
    out: dict[str, str] = {}
    for k, v in fields.items():
        key = k.decode("utf-8", "replace")
        try:
            out[key] = v.decode("utf-8")
            if "\x00" in out[key] or out[key].startswith("base64:"):
                raise UnicodeDecodeError("utf-8", v, 0, 1, "binary")
        except UnicodeDecodeError:
            out[key] = "base64:" + base64.b64encode(v).decode("ascii")
    return out


def text_to_fields(fields: dict[str, str]) -> dict[bytes, bytes]:
    """Inverse of :func:`fields_to_text` (used by ``vigil dlq replay``)."""
    out: dict[bytes, bytes] = {}
    for k, v in fields.items():
        out[k.encode()] = base64.b64decode(v[7:]) if v.startswith("base64:") else v.encode()
    return out
