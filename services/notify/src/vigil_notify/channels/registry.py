"""Channel registry: the URL scheme picks the channel class; Apprise handles every other scheme."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from vigil_notify.channels.base import Channel

ChannelFactory = Callable[..., Channel]


class ChannelRegistry:
    """Maps URL schemes to channel factories; unknown schemes go to ``fallback`` (Apprise)."""

    def __init__(self, *, fallback: ChannelFactory | None = None) -> None:
        self._factories: dict[str, ChannelFactory] = {}
        self.fallback = fallback
        self._checked: dict[str, str | None] = {}

    def register(self, factory: ChannelFactory, schemes: tuple[str, ...] | None = None) -> None:
        if not schemes:
            schemes = getattr(factory, "schemes", ())
        for scheme in schemes:
            self._factories[scheme.lower()] = factory

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def factory_for(self, url: str) -> ChannelFactory | None:
        scheme = urlsplit(url).scheme.lower()
        return self._factories.get(scheme, self.fallback)

    def create(self, url: str, **options: Any) -> Channel:
        """A channel for ``url``; raises ValueError (message free of secrets) if none fits."""
        factory = self.factory_for(url)
        if factory is None:
            raise ValueError(f"unsupported channel scheme {urlsplit(url).scheme!r}")
        return factory(url, **options)

    def check(self, url: str) -> str | None:
        """None when ``url`` can be delivered to, else a secret-free explanation (cached per URL)."""
        if url in self._checked:
            return self._checked[url]
        try:
            self.create(url)
            problem = None
        except ValueError as exc:
            problem = str(exc)
        except Exception as exc:
            problem = f"invalid channel URL ({type(exc).__name__})"
        if len(self._checked) > 4096:
            self._checked.clear()
        self._checked[url] = problem
        return problem


@functools.cache
def default_registry() -> ChannelRegistry:
    from vigil_notify.channels.apprise_channel import AppriseChannel
    from vigil_notify.channels.console import ConsoleChannel
    from vigil_notify.channels.jsonl import JsonlChannel
    from vigil_notify.channels.webhook import WebhookChannel

    registry = ChannelRegistry(fallback=AppriseChannel)
    for cls in (ConsoleChannel, JsonlChannel, WebhookChannel):
        registry.register(cls)
    return registry
