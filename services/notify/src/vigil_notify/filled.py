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
    are made by the prepared message's methods from the delivery's values (kept as one tuple:
    no bound callables per delivery). The prepared message makes its deliveries' instances with
    :func:`vigil_notify.rendering._filled` (the instance dict this ``__init__`` fills, without a Python
    call when rendering is compiled): keep the two the same."""

    def __init__(
        self,
        prepared: PreparedMessage,
        reason: str,
        subscription_id: str,
        subscription_name: str,
        idempotency_key: str,
    ) -> None:
        d = self.__dict__  # a frozen dataclass: fill the instance dict as LazyMessage does
        d["title"] = prepared._title
        d["idempotency_key"] = idempotency_key
        d["_fill"] = (prepared, reason, subscription_id, subscription_name, idempotency_key)

    def _part(self, part: str) -> str:
        made: str | None = self.__dict__.get(part)
        if made is None:
            prepared, reason, sub_id, name, key = self.__dict__["_fill"]
            made = self.__dict__[part] = prepared._body(reason, sub_id, name, key, part)
        return made

    @property
    def payload(self) -> dict[str, Any]:
        made: dict[str, Any] | None = self.__dict__.get("payload")
        if made is None:
            prepared, reason, sub_id, _, key = self.__dict__["_fill"]
            made = self.__dict__["payload"] = prepared._payload(reason, sub_id, key)
        return made

    def json_line(self) -> str:
        if "payload" in self.__dict__:  # a payload handed out may have been changed
            return Message.json_line(self)
        fill: tuple[PreparedMessage, str, str, str, str] = self.__dict__["_fill"]
        prepared, reason, sub_id, name, key = fill
        return prepared._json_line(reason, sub_id, name, key)

    def json_line_bytes(self) -> bytes:
        d = self.__dict__
        if "payload" in d:
            return Message.json_line_bytes(self)
        fill: tuple[PreparedMessage, str, str, str, str] = d["_fill"]
        return fill[0]._json_line_bytes(fill[1], fill[2], fill[3], fill[4])
