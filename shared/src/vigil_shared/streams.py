"""Every Redis stream and consumer group Vigil uses, named in one place.

The consumer group of a stream is the name of the service that consumes it; every replica of that
service joins the group under its own consumer name (see :func:`vigil_shared.runtime.consumer_name`),
so replicas share the work. A new downstream consumer is a new group on an existing stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

if TYPE_CHECKING:
    from redis.typing import StreamRangeResponse, XReadResponse

ALERTS_RECEIVED: Final = "vigil.alerts.received"
ALERTS_CLASSIFIED: Final = "vigil.alerts.classified"
NOTIFICATIONS: Final = "vigil.notifications"
DEADLETTER: Final = "vigil.deadletter"

ALL_STREAMS: Final = (ALERTS_RECEIVED, ALERTS_CLASSIFIED, NOTIFICATIONS, DEADLETTER)

# consumer groups: the consuming service's name
GROUP_CLASSIFY: Final = "classify"
GROUP_NOTIFY: Final = "notify"

KEY_PREFIX: Final = "vigil:"
"""Prefix of every non-stream key (dedup, subscriptions, idempotency, state)."""


def key(*parts: str) -> str:
    """A namespaced Redis key: ``key("dedup", "abc")`` -> ``vigil:dedup:abc``."""
    return KEY_PREFIX + ":".join(parts)


# --- typed stream replies -------------------------------------------------------------------------
# redis-py 8 types XRANGE/XREVRANGE/XREAD replies for every client mode at once: ids, field names and
# values as ``bytes | str``, and ``None`` for ids/fields (entries deleted while pending, which only
# XREADGROUP/XAUTOCLAIM report). Vigil's clients never set ``decode_responses`` and speak RESP2, and
# XRANGE/XREVRANGE/XREAD only return live entries, so the replies are narrowed here, once.

Entry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
"""One stream entry as Vigil's clients receive it: ``(entry id, {field: value})``, all bytes."""


def entries(reply: StreamRangeResponse | None) -> list[Entry]:
    """An XRANGE/XREVRANGE reply as :data:`Entry` items (``[]`` for a nil reply)."""
    if reply is None:
        return []
    # cast: bytes because no Vigil client decodes responses; no None because these commands
    # never return deleted entries (see above)
    return cast("list[Entry]", reply)


def read_entries(reply: XReadResponse | None) -> list[Entry]:
    """The entries of a one-stream XREAD reply (``[]`` when the read timed out).

    Over RESP2 the reply is ``[[stream name, entries]]``; the dict shapes in redis-py's hint are RESP3's.
    """
    if not reply:
        return []
    # cast: a RESP2 client's XREAD reply is a list of [name, entries] pairs (see above)
    first: list[Any] = cast("list[list[Any]]", reply)[0]
    return entries(first[1])
