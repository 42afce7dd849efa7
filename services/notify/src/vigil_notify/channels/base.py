"""The channel plugin interface: one object per channel URL that can ``send`` a rendered message."""

from __future__ import annotations

import json
from collections.abc import Callable
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

    def json_line(self) -> str:
        """The JSON object a JSONL channel appends: the payload plus ``rendered_text`` (no newline)."""
        return json.dumps({**self.payload, "rendered_text": self.text}, ensure_ascii=False)

    def json_line_bytes(self) -> bytes:
        """What a JSONL channel writes: :meth:`json_line` and a newline, UTF-8 encoded (raises as
        that encoding does: a lone surrogate). A prepared message writes it from its shared parts
        already encoded, without the line's ``str`` (a copy and an encode of its text per delivery)."""
        return (self.json_line() + "\n").encode("utf-8")


class LazyMessage(Message):
    """A :class:`Message` whose ``text``, ``markdown`` and ``html`` are made on first access by
    ``make(part)`` and whose ``payload`` by ``payload()`` (most channels read only some of them,
    JSONL only :meth:`json_line`); its parts are those of the eager message (``==`` compares
    classes too, so compare the parts)."""

    def __init__(
        self,
        *,
        title: str,
        make: Callable[[str], str],
        payload: Callable[[], dict[str, Any]],
        idempotency_key: str = "",
        line: Callable[[], str] | None = None,
    ) -> None:
        """``line()``, when given, makes :meth:`json_line` without the payload dict (it must
        return what the default would: the JSON of ``payload()`` plus ``rendered_text``)."""
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "idempotency_key", idempotency_key)
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_make_payload", payload)
        object.__setattr__(self, "_line", line)

    def _part(self, part: str) -> str:
        made: str | None = self.__dict__.get(part)
        if made is None:
            made = self.__dict__["_make"](part)
            self.__dict__[part] = made
        return made

    @property
    def text(self) -> str:
        return self._part("text")

    @property
    def markdown(self) -> str:
        return self._part("markdown")

    @property
    def html(self) -> str:
        return self._part("html")

    @property
    def payload(self) -> dict[str, Any]:
        made: dict[str, Any] | None = self.__dict__.get("payload")
        if made is None:
            made = self.__dict__["payload"] = self.__dict__["_make_payload"]()
        return made

    def json_line(self) -> str:
        line = self.__dict__["_line"]
        if line is None or "payload" in self.__dict__:  # a payload handed out may have been changed
            return Message.json_line(self)
        return str(line())


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
