"""``webhook+https://host/path?secret=…`` — a JSON POST signed with HMAC-SHA256.

The secret comes from the ``secret`` query parameter (removed before posting) or the URL userinfo
(``webhook+https://:SECRET@host/path``). Each request carries::

    X-Vigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>
    X-Vigil-Idempotency-Key: <key>   (the same on every retry: receivers can drop repeats)

Receivers verify with :func:`verify_signature`: recompute the HMAC over the raw body bytes, compare
in constant time, and refuse timestamps further than ``tolerance_s`` from their clock so a captured
request cannot be replayed later. Several ``v1=`` values may appear (secret rotation); one must match.

Errors: timeouts, connection errors, 5xx, 408 and 429 are temporary; other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
from vigil_shared.netguard import (
    BlockedDestination,
    ResponseTooLarge,
    guarded_client,
    is_blocked_error,
    safe_post,
)

from vigil_notify.channels.base import Message, PermanentFailure, TemporaryFailure
from vigil_notify.subscriptions import mask_url

SIGNATURE_HEADER = "X-Vigil-Signature"
IDEMPOTENCY_HEADER = "X-Vigil-Idempotency-Key"
MAX_RESPONSE_BYTES = 65_536


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``X-Vigil-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    body: bytes | str, header: str | None, secret: str, tolerance_s: int = 300, now: float | None = None
) -> int:
    """Check a webhook request; return its timestamp or raise :class:`InvalidSignature`.

    ``body`` must be the raw request body exactly as received. ``tolerance_s`` is the replay
    window: a timestamp older (or further in the future) than that is refused even with a valid MAC.
    """
    if not header:
        raise InvalidSignature("missing signature header")
    raw = body.encode() if isinstance(body, str) else body
    t: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t" and v.isdigit():
            t = int(v)
        elif k == "v1" and v:
            macs.append(v)
    if t is None or not macs:
        raise InvalidSignature("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        raise InvalidSignature("timestamp outside the replay window")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, m) for m in macs):
        raise InvalidSignature("signature mismatch")
    return t


def split_webhook_url(url: str) -> tuple[str, str]:
    """``webhook+https://:s@host/p?secret=s&x=1`` -> (``https://host/p?x=1``, ``s``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme.startswith("webhook+") or scheme[8:] not in {"http", "https"}:
        raise ValueError("webhook URLs are webhook+https://… or webhook+http://…")
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret = next((v for k, v in query if k == "secret"), "")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        if not secret:
            user, _, password = userinfo.partition(":")
            secret = unquote(password or user)
    if not secret:
        raise ValueError("webhook URL needs a signing secret (?secret=… or https://:secret@host)")
    rest = urlencode([(k, v) for k, v in query if k != "secret"])
    target = urlunsplit((scheme[8:], netloc, parts.path or "/", rest, ""))
    return target, secret


class WebhookChannel:
    schemes: ClassVar[tuple[str, ...]] = ("webhook+https", "webhook+http")

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None, **_: object
    ) -> None:
        self._masked = mask_url(url)
        self.target, self._secret = split_webhook_url(url)
        self._timeout = timeout_s
        self._client = client
        self._own_client = client is None

    @property
    def masked_url(self) -> str:
        return self._masked

    async def send(self, message: Message) -> None:
        if self._client is None:
            # SSRF guard: connects only to checked public addresses (VIGIL_OUTBOUND_ALLOWLIST for more)
            self._client = guarded_client(timeout=self._timeout, follow_redirects=False)
        body = json.dumps(
            {**message.payload, "text": message.text, "markdown": message.markdown}, ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "vigil-notify",
            SIGNATURE_HEADER: sign(body, self._secret),
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        try:
            # destination re-checked, no redirect followed, response capped, total time bounded
            resp = await safe_post(
                self._client, self.target, content=body, headers=headers,
                timeout_s=self._timeout, max_bytes=MAX_RESPONSE_BYTES,
            )  # fmt: skip
        except BlockedDestination as exc:
            raise PermanentFailure(f"webhook destination refused: {exc}") from None
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TemporaryFailure(f"webhook timed out after {self._timeout:g}s") from exc
        except ResponseTooLarge as exc:
            raise TemporaryFailure(f"webhook answer too large: {exc}") from None
        except httpx.TransportError as exc:
            if is_blocked_error(exc):
                raise PermanentFailure(f"webhook destination refused: {exc}") from None
            raise TemporaryFailure(f"webhook connection failed: {type(exc).__name__}") from exc
        status = resp.status_code
        if status < 300:
            return
        if status >= 500 or status in (408, 425, 429):
            raise TemporaryFailure(f"webhook answered HTTP {status}")
        raise PermanentFailure(f"webhook answered HTTP {status}")

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
