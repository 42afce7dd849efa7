"""API keys for Vigil's HTTP APIs: hashed at rest, compared in constant time, tied to a source and a role.

* **Keys.** ``vigil keys new --name embassy-feed --role ingest`` prints a new random key (256 bits)
  once, and the line to configure: ``embassy-feed:ingest:<sha256 hex of the key>``. Only that hash
  is configured, in ``VIGIL_API_KEYS`` (entries separated by commas, spaces or new lines) and/or in
  the file ``VIGIL_API_KEYS_FILE`` (one entry per line, ``#`` comments; e.g. a Docker secret). A
  plain SHA-256 is enough because the keys are long random strings, not passwords: there is nothing
  to guess from the hash. The presented key is hashed and compared with every configured hash using
  :func:`hmac.compare_digest` (no early exit), so timing reveals nothing about the stored hashes.
* **Presenting a key.** ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
* **Roles.** ``ingest`` may post alerts; ``admin`` may manage subscriptions (and also post alerts).
  The key's *name* is the source name stamped on the alerts it posts, so a caller cannot pose as
  another source.
* **Answers.** 401 (no key, unknown key; with ``WWW-Authenticate: Bearer``), 403 (valid key, wrong
  role), 429 with ``Retry-After`` when the key exceeds its rate: a token bucket per key in Redis
  (``vigil:ratelimit:<name>``, one Lua script using the server clock), so replicas share it.
  ``VIGIL_API_RATE_PER_S`` tokens per second, bursts up to ``VIGIL_API_BURST``. If Redis cannot be
  reached the limiter lets the request through (the request itself then fails with 503 anyway).
* **Open routes.** ``/healthz``, ``/readyz``, ``/metrics`` and the OpenAPI document stay open (they
  hold no alert or subscription data); publish them only where your monitoring can reach them.
* **Development.** ``VIGIL_AUTH_DISABLED=true`` switches checks off (every request is anonymous and
  alerts keep the source they name); a warning is logged when a router is built that way. With no
  key configured and auth not disabled, protected routes answer 401 explaining what to configure.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from fastapi import HTTPException, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vigil_shared.streams import key as redis_key

log = structlog.get_logger("vigil.auth")

KEY_PREFIX = "vigil_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="vigil"'}


class Role(StrEnum):
    INGEST = "ingest"
    ADMIN = "admin"


# which roles satisfy a requirement
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.INGEST: frozenset({Role.INGEST, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}


class KeyConfigError(ValueError):
    """An API key entry is malformed (the message never contains a key)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    digest: bytes  # sha256 of the key

    def line(self) -> str:
        return f"{self.name}:{self.role.value}:{self.digest.hex()}"


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name (the source name of what it posts) and role."""

    name: str | None
    role: Role | None
    authenticated: bool = True


ANONYMOUS = Principal(None, None, authenticated=False)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_entry(entry: str) -> ApiKey:
    parts = entry.strip().split(":")
    if len(parts) != 3:
        raise KeyConfigError("an API key entry is name:role:sha256hex")
    name, role, digest = (p.strip() for p in parts)
    if not NAME_PATTERN.match(name):
        raise KeyConfigError(f"API key name {name!r} must match {NAME_PATTERN.pattern}")
    try:
        parsed_role = Role(role)
    except ValueError:
        raise KeyConfigError(f"API key {name}: role must be one of {', '.join(r.value for r in Role)}") from None
    if not _HEX64.match(digest.lower()):
        raise KeyConfigError(f"API key {name}: the third field must be the 64-hex SHA-256 of the key, not the key")
    return ApiKey(name, parsed_role, bytes.fromhex(digest))


def parse_entries(text: str) -> list[ApiKey]:
    out: list[ApiKey] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for item in re.split(r"[,\s]+", line):
            if item:
                out.append(parse_entry(item))
    return out


class KeyRing:
    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self.keys = list(keys)
        names = [k.name for k in self.keys]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise KeyConfigError(f"API key names must be unique: {', '.join(sorted(dupes))}")

    @classmethod
    def load(cls, inline: str = "", file: str | Path | None = None) -> KeyRing:
        keys = parse_entries(inline or "")
        if file:
            try:
                keys += parse_entries(Path(file).read_text(encoding="utf-8"))
            except OSError as exc:
                raise KeyConfigError(f"cannot read the API keys file {file}: {exc.strerror}") from None
        return cls(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def verify(self, presented: str) -> ApiKey | None:
        """The key whose hash matches, comparing against every stored hash in constant time."""
        digest = hash_key(presented)
        found: ApiKey | None = None
        for k in self.keys:
            if hmac.compare_digest(digest, k.digest):
                found = k
        return found


# KEYS[1] = bucket; ARGV: rate per second, burst, cost. Returns {allowed (0/1), retry_after_ms}.
_BUCKET_LUA = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed, wait = 0, 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
"""


class RateLimiter:
    def __init__(self, redis: Redis, rate_per_s: float, burst: int) -> None:
        self.redis = redis
        self.rate = rate_per_s
        self.burst = burst
        self._script = redis.register_script(_BUCKET_LUA)

    @staticmethod
    def bucket(name: str) -> str:
        return redis_key("ratelimit", name)

    async def take(self, name: str, cost: int = 1) -> float:
        """0 when allowed, else the seconds to wait. Fails open if Redis is unreachable."""
        try:
            allowed, wait_ms = await self._script(keys=[self.bucket(name)], args=[self.rate, self.burst, cost])
        except (RedisError, OSError) as exc:
            log.warning("rate limiter unavailable; request let through", error=str(exc))
            return 0.0
        return 0.0 if int(allowed) else max(int(wait_ms), 1) / 1000


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


class ApiAuth:
    """Builds FastAPI dependencies that authenticate, authorise and rate-limit a request."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        disabled: bool = False,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.keys = keys
        self.disabled = disabled
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Any, redis: Redis | None = None, *, component: str = "api") -> ApiAuth:
        disabled = bool(getattr(settings, "auth_disabled", False))
        keys = KeyRing.load(getattr(settings, "api_keys", ""), getattr(settings, "api_keys_file", None))
        rate = float(getattr(settings, "api_rate_per_s", 0) or 0)
        limiter = RateLimiter(redis, rate, int(getattr(settings, "api_burst", 1))) if redis and rate > 0 else None
        if disabled:
            log.warning(
                "API AUTHENTICATION IS DISABLED (VIGIL_AUTH_DISABLED=true): anyone who can reach this port "
                "can post alerts and read or change subscriptions; for development only",
                component=component,
            )
        elif not keys:
            log.warning(
                "no API keys configured: protected routes answer 401 (create one with `vigil keys new`, set "
                "VIGIL_API_KEYS or VIGIL_API_KEYS_FILE)",
                component=component,
            )
        return cls(keys, disabled=disabled, limiter=limiter)

    def require(self, role: Role | str) -> Callable[[Request], Awaitable[Principal]]:
        needed = Role(role)

        async def dependency(request: Request) -> Principal:
            if self.disabled:
                return ANONYMOUS
            presented = _presented_key(request)
            if presented is None:
                self._refused(request, 401, "missing API key")
                raise HTTPException(
                    401,
                    detail="API key required: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')"
                    if self.keys
                    else "API key required, and none is configured on this server: create one with "
                    "`vigil keys new` and set VIGIL_API_KEYS (or VIGIL_AUTH_DISABLED=true for development)",
                    headers=AUTHENTICATE,
                )
            found = self.keys.verify(presented)
            if found is None:
                self._refused(request, 401, "unknown API key")
                raise HTTPException(401, detail="invalid API key", headers=AUTHENTICATE)
            if found.role not in _GRANTS[needed]:
                self._refused(request, 403, "role not allowed", key_name=found.name)
                raise HTTPException(
                    403,
                    detail=f"API key '{found.name}' has role '{found.role.value}'; this operation needs "
                    f"role '{needed.value}'",
                )
            if self.limiter is not None:
                wait = await self.limiter.take(found.name)
                if wait > 0:
                    self._refused(request, 429, "rate limited", key_name=found.name)
                    raise HTTPException(
                        429,
                        detail=f"rate limit of API key '{found.name}' exceeded; retry later",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
            return Principal(found.name, found.role)

        return dependency

    @staticmethod
    def _refused(request: Request, status: int, reason: str, key_name: str | None = None) -> None:
        log.warning(
            "request refused",
            status=status,
            reason=reason,
            key_name=key_name,
            client=request.client.host if request.client else None,
            path=request.url.path,
        )


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key (see the WWW-Authenticate header)"},
    403: {"description": "The API key's role does not allow this operation"},
    429: {"description": "The API key's rate limit is exceeded (see the Retry-After header)"},
}
