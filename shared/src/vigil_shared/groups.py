"""Consumer groups an operator adds or removes (``vigil groups ...``).

A new downstream consumer of a Vigil stream is a new consumer group on it. It can start from the
beginning of what the stream still retains (``start``: it will read every retained entry) or from now
(``now``: only entries written after it was created). Groups are independent: adding, reading or
removing one never changes what another group (notify, classify) reads or has pending.

Note: a group that is created and never consumed holds retention back (lag-aware trimming keeps what
it has not read) until the XADD safety cap trims; remove groups you no longer use.
"""

from __future__ import annotations

from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import ResponseError


class GroupExists(ValueError):
    pass


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def add_group(redis: Redis, stream: str, name: str, start: Literal["start", "now"] = "now") -> str:
    """Create consumer group ``name`` on ``stream`` (created if missing); returns its first-read id."""
    first = "0" if start == "start" else "$"
    try:
        await redis.xgroup_create(stream, name, id=first, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            raise GroupExists(f"group {name!r} already exists on {stream}") from exc
        raise
    for g in await redis.xinfo_groups(stream):
        if _s(g["name"]) == name:
            return _s(g["last-delivered-id"])
    return first


async def remove_group(redis: Redis, stream: str, name: str) -> bool:
    """Destroy a group (its pending entries are forgotten; the stream itself is untouched)."""
    return bool(await redis.xgroup_destroy(stream, name))


async def list_groups(redis: Redis, stream: str) -> list[dict[str, Any]]:
    if not await redis.exists(stream):
        return []
    out = []
    for g in await redis.xinfo_groups(stream):
        out.append(
            {
                "name": _s(g["name"]),
                "consumers": int(g["consumers"]),
                "pending": int(g["pending"]),
                "last_delivered_id": _s(g["last-delivered-id"]),
                "lag": None if g.get("lag") is None else int(g["lag"]),
            }
        )
    return out
