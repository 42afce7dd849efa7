"""The admin key: every data route of the console requires ``Authorization: Bearer <key>``.

When :mod:`vigil_shared.auth` is installed (Vigil's API keys), the console asks for a key of role
``admin`` exactly like notify's subscription API does (``VIGIL_API_KEYS`` / ``VIGIL_API_KEYS_FILE``,
per-key rate limit, ``VIGIL_AUTH_DISABLED`` for development). On a Vigil without that module the
console falls back to one key whose SHA-256 is ``VIGIL_CONSOLE_ADMIN_KEY_SHA256`` (constant-time
compare; no hash configured = every data route answers 503, failing closed).

The page forwards the same ``Authorization`` header to notify's API, so one admin key works for both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from redis.asyncio import Redis

from vigil_console.settings import ConsoleSettings

Dependency = Callable[[Request], Awaitable[Any]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def check_key(key: str | None, expected_sha256: str) -> bool:
    if not key or not expected_sha256:
        return False
    return hmac.compare_digest(hash_key(key), expected_sha256.strip().lower())


def fallback_dependency(settings: ConsoleSettings) -> Dependency:
    """The console's own check against ``VIGIL_CONSOLE_ADMIN_KEY_SHA256``."""

    async def require_admin(request: Request) -> str:
        if not settings.admin_key_sha256.strip():
            raise HTTPException(
                503, detail="the console has no admin key configured (set VIGIL_CONSOLE_ADMIN_KEY_SHA256)"
            )
        key = bearer(request)
        if not check_key(key, settings.admin_key_sha256):
            raise HTTPException(
                401, detail="admin key missing or wrong", headers={"WWW-Authenticate": 'Bearer realm="vigil"'}
            )
        return key or ""

    return require_admin


def admin_dependency(settings: ConsoleSettings, vigil_settings: Any = None, redis: Redis | None = None) -> Dependency:
    """Vigil's shared API-key check for role ``admin`` when available, else :func:`fallback_dependency`."""
    try:
        from vigil_shared.auth import ApiAuth, Role  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return fallback_dependency(settings)
    if vigil_settings is None:
        from vigil_shared.settings import VigilSettings

        vigil_settings = VigilSettings()
    auth = ApiAuth.from_settings(vigil_settings, redis, component="console")
    return auth.require(Role.ADMIN)  # type: ignore[no-any-return,unused-ignore]
