"""The channel plugin interface: one object per channel URL that can ``send`` a rendered message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable


class DeliveryError(Exception):
    """A send failed; ``reason`` is safe to log (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryError):
    """Worth retrying: timeouts, connection errors, HTTP 5xx/408/429, SMTP 4xx."""


class PermanentFailure(DeliveryError):
    """Retrying will not help: HTTP 4xx, authentication errors, invalid channel URL."""


@dataclass(frozen=True)
class Message:
    """One rendered notification for one (alert revision, subscription, channel)."""

    title: str
    text: str
    markdown: str
    html: str
    payload: dict[str, Any] = field(default_factory=dict)
    """Structured form for machine channels (JSONL, webhook): alert_id, revision, kind, reason, ..."""
    idempotency_key: str = ""


@runtime_checkable
class Channel(Protocol):
    """A delivery channel chosen by URL scheme.

    ``send`` returns when the peer accepted the message and raises :class:`TemporaryFailure` or
    :class:`PermanentFailure` otherwise; it must never put the raw URL in an exception message.
    """

    schemes: ClassVar[tuple[str, ...]]

    @property
    def masked_url(self) -> str: ...

    async def send(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...
