"""``console://`` — print the plain-text rendering to stdout (``console://stderr`` for stderr)."""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO
from urllib.parse import urlsplit

from vigil_notify.channels.base import Message


class ConsoleChannel:
    schemes: ClassVar[tuple[str, ...]] = ("console",)

    def __init__(self, url: str, *, stream: TextIO | None = None, **_: object) -> None:
        self._url = url
        self._stream = stream
        self._stderr = urlsplit(url).netloc == "stderr"

    @property
    def masked_url(self) -> str:
        return self._url

    async def send(self, message: Message) -> None:
        stream = self._stream or (sys.stderr if self._stderr else sys.stdout)
        rule = "=" * 72
        stream.write(f"{rule}\n{message.title}\n{rule}\n{message.text}\n")
        stream.flush()

    async def aclose(self) -> None:
        return None
