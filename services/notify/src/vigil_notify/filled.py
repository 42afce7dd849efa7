"""A prepared message filled in for one delivery (:class:`FilledMessage`).

It lives apart from :mod:`vigil_notify.rendering` because it fills the instance dict of a frozen
:class:`~vigil_notify.channels.base.LazyMessage` (an interpreted dataclass), which a class compiled
by mypyc cannot do: this module always runs interpreted, while rendering may be compiled
(:mod:`vigil_notify.native`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vigil_notify.channels.base import LazyMessage, Message

if TYPE_CHECKING:
    from vigil_notify.rendering import PreparedMessage


class FilledMessage(LazyMessage):
    """A :class:`PreparedMessage` filled in for one delivery: a :class:`LazyMessage` whose parts
    are made by the prepared message's methods from the delivery's values, kept as one tuple in a
    slot (``_fill``: no instance dict unless a part or the payload is made, no bound callables per
    delivery); the title is the prepared message's and the idempotency key the fill's. The
    prepared message makes its deliveries' instances with :func:`vigil_notify.rendering._filled`
    (the slot this ``__init__`` sets, without a Python call when rendering is compiled): keep the
    two the same. Once the payload is handed out (it may be changed), it is the fill's sixth item
    (and in the instance dict, as :class:`LazyMessage` keeps it) and the line is made from it."""

    __slots__ = ("_fill",)
    _fill: tuple[Any, ...]
    """``(prepared, reason, subscription_id, subscription_name, idempotency_key)``, then the payload
    once handed out."""

    def __init__(
        self,
        prepared: PreparedMessage,
        reason: str,
        subscription_id: str,
        subscription_name: str,
        idempotency_key: str,
    ) -> None:
        object.__setattr__(self, "_fill", (prepared, reason, subscription_id, subscription_name, idempotency_key))

    @property
    def title(self) -> str:
        title: str = self._fill[0]._title
        return title

    @property
    def idempotency_key(self) -> str:
        key: str = self._fill[4]
        return key

    def _part(self, part: str) -> str:
        made: str | None = self.__dict__.get(part)
        if made is None:
            fill = self._fill
            prepared: PreparedMessage = fill[0]
            made = self.__dict__[part] = prepared._body(fill[1], fill[2], fill[3], fill[4], part)
        return made

    @property
    def payload(self) -> dict[str, Any]:
        fill = self._fill
        if len(fill) > 5:
            handed_out: dict[str, Any] = fill[5]
            return handed_out
        prepared: PreparedMessage = fill[0]
        made = prepared._payload(fill[1], fill[2], fill[4])
        object.__setattr__(self, "_fill", (*fill, made))
        self.__dict__["payload"] = made
        return made

    def json_line(self) -> str:
        fill = self._fill
        if len(fill) > 5:  # a payload handed out may have been changed
            return Message.json_line(self)
        prepared: PreparedMessage = fill[0]
        return prepared._json_line(fill[1], fill[2], fill[3], fill[4])

    def json_line_bytes(self) -> bytes:
        fill = self._fill
        if len(fill) > 5:
            return Message.json_line_bytes(self)
        prepared: PreparedMessage = fill[0]
        return prepared._json_line_bytes(fill[1], fill[2], fill[3], fill[4])
