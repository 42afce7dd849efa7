"""``jsonl:///abs/path/file.jsonl`` — append one JSON object per delivery.

``jsonl://rel/path.jsonl`` is relative to the working directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from vigil_notify.channels.base import Message, PermanentFailure, TemporaryFailure
from vigil_notify.rendering import json_lines_bytes


def jsonl_path(url: str) -> Path:
    parts = urlsplit(url)
    raw = unquote(parts.netloc + parts.path)
    if not raw:
        raise ValueError("jsonl:// needs a file path, e.g. jsonl:///var/lib/vigil/out.jsonl")
    return Path(raw)


class JsonlChannel:
    """Appends with one ``write(2)`` per line on a descriptor opened once with ``O_APPEND``.

    The write is synchronous: appending a line to a local file takes microseconds, far less than
    handing it to a thread (which cost more CPU than the rest of a delivery). Lines from several
    replicas never interleave (``O_APPEND``); a rotated or deleted file is reopened on the next send.
    """

    schemes: ClassVar[tuple[str, ...]] = ("jsonl",)
    completes_without_awaiting: ClassVar[bool] = True
    """``send`` never awaits (see above), so the deliverer calls it without a timeout task."""

    def __init__(self, url: str, **_: object) -> None:
        self._url = url
        self.path = jsonl_path(url)
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None

    @property
    def masked_url(self) -> str:
        return self._url

    async def send(self, message: Message) -> None:
        data = message.json_line_bytes()
        try:
            self._append(data)
        except OSError as exc:
            raise self._failure(exc) from exc

    def send_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """:meth:`send` of several messages, in order, without awaiting: one outcome each (None:
        written; else the exception :meth:`send` would have raised).

        The lines go out in one ``write(2)`` (``O_APPEND``: one contiguous append, as one line's
        write is, so other writers' lines never land inside it), and the path is checked for
        rotation once for the lot: the lines are written back to back, so this is as if a rotation
        during them had come after them. When that write fails or is cut short, the lines it wrote
        whole are sent, the line it was in fails as :meth:`send` would have, and the ones after it
        are written one by one as :meth:`send` would."""
        out: list[Exception | None] = [None] * len(messages)
        where: Sequence[int]
        try:  # the usual case: every line made (one comprehension, no bookkeeping per line)
            datas = json_lines_bytes(messages)  # (each message.json_line_bytes(), compiled)
            where = range(len(datas))
        except Exception:  # some line cannot be made: make them one by one (each is made again)
            datas, where = self._lines_one_by_one(messages, out)
        if not datas:
            return out
        buf = datas[0] if len(datas) == 1 else b"".join(datas)
        written = 0
        try:
            fd = self._current_fd()
            written = os.write(fd, buf)
            while written < len(buf):  # (only on a full disk or a signal)
                written += os.write(fd, buf[written:])
            return out
        except OSError as exc:
            failure = self._failure(exc)
        # the lines written whole are sent; the one cut fails; the rest are tried one by one
        end = 0
        rest = len(datas)
        for n, data in enumerate(datas):
            end += len(data)
            if end > written:
                out[where[n]] = failure
                rest = n + 1
                break
        fd_: int | None = None
        for n in range(rest, len(datas)):
            try:
                if fd_ is None:
                    fd_ = self._current_fd()
                self._write(fd_, datas[n])
            except OSError as exc:
                out[where[n]] = self._failure(exc)
                fd_ = None
        return out

    @staticmethod
    def _lines_one_by_one(messages: Sequence[Message], out: list[Exception | None]) -> tuple[list[bytes], list[int]]:
        """The lines of ``messages`` that can be made and where they are; a message whose line raises
        gets the exception in ``out`` (as :meth:`send` would raise it)."""
        datas: list[bytes] = []
        where: list[int] = []
        for i, message in enumerate(messages):
            try:
                datas.append(message.json_line_bytes())
            except Exception as exc:  # as send() would raise it
                out[i] = exc
            else:
                where.append(i)
        return datas, where

    def _failure(self, exc: OSError) -> Exception:
        if isinstance(exc, PermissionError):
            return PermanentFailure(f"cannot write {self.path}: permission denied")
        self._close()
        return TemporaryFailure(f"cannot write {self.path}: {exc.strerror}")

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        st = os.fstat(fd)
        self._fd, self._id = fd, (st.st_dev, st.st_ino)
        return fd

    def _current_fd(self) -> int:
        if self._fd is None:
            return self._open()
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._id
        except FileNotFoundError:
            same = False
        if not same:  # rotated or removed: write to the file now at the path
            self._close()
            return self._open()
        return self._fd

    def _append(self, data: bytes) -> None:
        self._write(self._current_fd(), data)

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        written = os.write(fd, data)  # one write of one line: atomic for O_APPEND
        while written < len(data):  # (only on a full disk or a signal; never seen for one line)
            written += os.write(fd, data[written:])

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    async def aclose(self) -> None:
        self._close()
