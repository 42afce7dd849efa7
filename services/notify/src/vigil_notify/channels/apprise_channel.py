"""Every other scheme goes to Apprise (mailto/mailtos, slack, discord, ntfy, tgram, msteams, ...).

Apprise plugins are synchronous, so a send runs in a worker thread under ``asyncio.wait_for``:
the event loop never blocks and a hung peer costs at most ``timeout_s`` (the thread itself ends
when the plugin's socket timeout fires). Apprise reports failure as ``False``; the reason is read
from the plugin's own log lines in that thread (captured by a filter on the ``apprise`` logger that
also keeps its debug chatter out of the application's logs):

* SMTP 4xx, HTTP 5xx/408/429, timeouts, connection errors -> :class:`TemporaryFailure`
* SMTP 5xx, authentication errors, HTTP 4xx -> :class:`PermanentFailure`
* no recognisable cause -> temporary (bounded by the retry budget)
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any, ClassVar

import apprise
from vigil_shared.netguard import BlockedDestination, check_foreign_url

from vigil_notify.channels.base import Message, PermanentFailure, TemporaryFailure
from vigil_notify.subscriptions import mask_url

_tls = threading.local()


class _CaptureFilter(logging.Filter):
    """Record apprise log lines of the current thread; pass on only WARNING+ to handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        buf = getattr(_tls, "buffer", None)
        if buf is not None:
            buf.append(record.getMessage())
        return record.levelno >= logging.WARNING


_installed = False


def _install_capture() -> None:
    global _installed
    if _installed:
        return
    logger = logging.getLogger("apprise")
    logger.setLevel(logging.DEBUG)
    logger.addFilter(_CaptureFilter())
    _installed = True


_SMTP_CODE = re.compile(r"\((\d{3}),")
_HTTP_CODE = re.compile(r"(?:error|code|status)[=: ]+(\d{3})\b|\b(\d{3})\s*-\s*\w|\b([45]\d\d)\b", re.I)


def classify_apprise_failure(lines: list[str]) -> tuple[bool, str]:
    """(permanent?, reason) from the plugin's log lines."""
    text = " | ".join(lines)
    low = text.lower()
    if m := _SMTP_CODE.search(text):
        code = int(m.group(1))
        return code >= 500, f"SMTP {code}"
    if "authenticat" in low or "unauthorized" in low or "forbidden" in low or "invalid token" in low:
        return True, "authentication failed"
    if "timed out" in low or "timeout" in low:
        return False, "timed out"
    for m in _HTTP_CODE.finditer(text):
        code = int(next(g for g in m.groups() if g))
        if 400 <= code < 600:
            temporary = code >= 500 or code in (408, 425, 429)
            return not temporary, f"HTTP {code}"
    if "connection" in low or "socket" in low or "refused" in low:
        return False, "connection failed"
    return False, "send failed (no cause reported)"


class AppriseChannel:
    schemes: ClassVar[tuple[str, ...]] = ()  # the registry's fallback: any scheme Apprise knows

    def __init__(self, url: str, *, timeout_s: float = 30.0, **_: object) -> None:
        _install_capture()
        self._masked = mask_url(url)
        self._url = url
        self._timeout = timeout_s
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ValueError("no notification service understands this URL")
        self._plugin: Any = plugin
        # Apprise paces each plugin object to one send per ``request_rate_per_sec`` (5.5 s for most
        # services) by sleeping inside notify(). This object serves every delivery to its URL, so that
        # sleep landed inside the send's timeout: the second e-mail within 5.5 s timed out, was retried
        # and then went out twice. Pacing is Vigil's job (per-subscription throttle and digests,
        # retries with back-off when a service refuses), so Apprise's is switched off.
        plugin.request_rate_per_sec = 0
        fmt = getattr(plugin, "notify_format", "text")
        fmt = fmt[0] if isinstance(fmt, tuple | list) else fmt
        self.body_format = str(getattr(fmt, "value", fmt))

    @property
    def masked_url(self) -> str:
        return self._masked

    def _send_blocking(self, message: Message) -> tuple[bool, list[str]]:
        _tls.buffer = lines = []
        try:
            if self.body_format == "html":
                body = message.html
            elif self.body_format == "markdown":
                body = message.markdown
            else:
                body = message.text
            ok = bool(self._plugin.notify(body=body, title=message.title, body_format=self.body_format))
        except Exception as exc:  # a plugin bug or socket error escaping the plugin
            lines.append(f"exception {type(exc).__name__}: {exc}")
            ok = False
        finally:
            _tls.buffer = None
        return ok, lines

    async def send(self, message: Message) -> None:
        # SSRF guard: Apprise connects by itself, so the destination is checked before handing over
        # (residual risk: DNS changing between this check and Apprise's connection, see SECURITY.md)
        try:
            await check_foreign_url(self._url, extra_hosts=self._hosts())
        except BlockedDestination as exc:
            raise PermanentFailure(f"{self._service()}: destination refused: {exc}") from None
        try:
            ok, lines = await asyncio.wait_for(asyncio.to_thread(self._send_blocking, message), self._timeout)
        except TimeoutError as exc:
            raise TemporaryFailure(f"{self._service()} timed out after {self._timeout:g}s") from exc
        if ok:
            return
        permanent, reason = classify_apprise_failure(lines)
        reason = f"{self._service()}: {reason}"
        raise PermanentFailure(reason) if permanent else TemporaryFailure(reason)

    def _hosts(self) -> list[str]:
        """Network hosts the plugin will connect to, beyond the URL's own host (e.g. SMTP server)."""
        found = []
        for attr in ("smtp_host", "host"):
            value = getattr(self._plugin, attr, None)
            if isinstance(value, str) and value:
                found.append(value)
        return found

    def _service(self) -> str:
        return str(getattr(self._plugin, "service_name", "apprise"))

    async def aclose(self) -> None:
        return None
