"""``jsonl:///abs/path/file.jsonl`` — append one JSON object per delivery.

``jsonl://rel/path.jsonl`` is relative to the working directory.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from vigil_notify.channels.base import Message, PermanentFailure, TemporaryFailure

_LOCKS: dict[Path, asyncio.Lock] = {}


def jsonl_path(url: str) -> Path:
    parts = urlsplit(url)
    raw = unquote(parts.netloc + parts.path)
    if not raw:
        raise ValueError("jsonl:// needs a file path, e.g. jsonl:///var/lib/vigil/out.jsonl")
    return Path(raw)


class JsonlChannel:
    schemes: ClassVar[tuple[str, ...]] = ("jsonl",)

    def __init__(self, url: str, **_: object) -> None:
        self._url = url
        self.path = jsonl_path(url)

    @property
    def masked_url(self) -> str:
        return self._url

    async def send(self, message: Message) -> None:
        line = json.dumps({**message.payload, "rendered_text": message.text}, ensure_ascii=False)
        lock = _LOCKS.setdefault(self.path, asyncio.Lock())
        async with lock:
            try:
                await asyncio.to_thread(self._append, line)
            except PermissionError as exc:
                raise PermanentFailure(f"cannot write {self.path}: permission denied") from exc
            except OSError as exc:
                raise TemporaryFailure(f"cannot write {self.path}: {exc.strerror}") from exc

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:  # one write of one line: atomic for O_APPEND
            fh.write(line + "\n")

    async def aclose(self) -> None:
        return None
