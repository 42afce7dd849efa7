"""Every Redis stream and consumer group Vigil uses, named in one place.

The consumer group of a stream is the name of the service that consumes it; every replica of that
service joins the group under its own consumer name (see :func:`vigil_shared.runtime.consumer_name`),
so replicas share the work. A new downstream consumer is a new group on an existing stream.
"""

from __future__ import annotations

from typing import Final

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
