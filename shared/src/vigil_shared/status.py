"""What is in the streams: length, lag, pending and consumers per group (``vigil status``, /readyz)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from vigil_shared import metrics, streams
from vigil_shared.envelope import decode_entry

DEADLETTER_SCAN = 10_000
LAG_COUNT_LIMIT = 10_001
"""When Redis reports no lag for a group, status counts unread entries itself, up to this many."""


@dataclass
class GroupStatus:
    name: str
    lag: int | None
    pending: int
    oldest_pending_age_s: float | None
    consumers: int
    last_delivered_id: str
    dead_letters: int = 0
    """Records in ``vigil.deadletter`` for this stream and group (of the newest ``DEADLETTER_SCAN``)."""
    consumer_details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StreamStatus:
    stream: str
    exists: bool
    length: int = 0
    groups: list[GroupStatus] = field(default_factory=list)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


async def dead_letter_counts(redis: Redis, limit: int = DEADLETTER_SCAN) -> dict[tuple[str, str], int]:
    """How many dead letters each (stream, group) produced, over the newest ``limit`` records."""
    counts: dict[tuple[str, str], int] = {}
    if not await redis.exists(streams.DEADLETTER):
        return counts
    for _, fields in streams.entries(await redis.xrevrange(streams.DEADLETTER, count=limit)):
        try:
            doc = orjson.loads(decode_entry(fields)[0])
            key = (str(doc.get("stream", "?")), str(doc.get("group", "?")))
        except Exception:
            key = ("?", "?")
        counts[key] = counts.get(key, 0) + 1
    return counts


async def stream_status(
    redis: Redis, stream: str, dead: dict[tuple[str, str], int] | None = None
) -> StreamStatus:
    if not await redis.exists(stream):
        return StreamStatus(stream, exists=False)
    length = int(await redis.xlen(stream))
    st = StreamStatus(stream, exists=True, length=length)
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        groups = []
    now_ms = int(time.time() * 1000)
    for g in groups:
        name = _s(g["name"])
        pending = int(g["pending"])
        oldest: float | None = None
        if pending:
            summary = await redis.xpending(stream, name)
            if summary and summary.get("min"):
                oldest = max(0.0, (now_ms - _id_ms(_s(summary["min"]))) / 1000)
        details = [
            {"name": _s(c["name"]), "pending": int(c["pending"]), "idle_s": round(int(c["idle"]) / 1000, 1)}
            for c in await redis.xinfo_consumers(stream, name)
        ]
        lag = g.get("lag")
        last_id = _s(g["last-delivered-id"])
        if lag is None:
            # Redis cannot tell (group created at "$", or deletions in between): count what is unread
            rows = streams.entries(await redis.xrange(stream, min=f"({last_id}", max="+", count=LAG_COUNT_LIMIT))
            lag = len(rows)
        st.groups.append(
            GroupStatus(
                name=name,
                lag=int(lag) if lag is not None else None,
                pending=pending,
                oldest_pending_age_s=oldest,
                consumers=int(g["consumers"]),
                last_delivered_id=_s(g["last-delivered-id"]),
                dead_letters=(dead or {}).get((stream, name), 0),
                consumer_details=details,
            )
        )
        metrics.GROUP_PENDING.labels(stream=stream, group=name).set(pending)
        if lag is not None:
            metrics.GROUP_LAG.labels(stream=stream, group=name).set(int(lag))
    metrics.STREAM_LENGTH.labels(stream=stream).set(length)
    return st


async def pipeline_status(redis: Redis, extra_streams: tuple[str, ...] = ()) -> list[StreamStatus]:
    dead = await dead_letter_counts(redis)
    return [await stream_status(redis, s, dead) for s in (*streams.ALL_STREAMS, *extra_streams)]


def problems(statuses: list[StreamStatus], stuck_after_s: float = 300.0, max_lag: int = 10_000) -> list[str]:
    """Human-readable reasons the pipeline looks stuck (empty list when healthy)."""
    out: list[str] = []
    for st in statuses:
        for g in st.groups:
            if g.oldest_pending_age_s is not None and g.oldest_pending_age_s > stuck_after_s:
                out.append(
                    f"{st.stream} group {g.name}: oldest pending entry is {g.oldest_pending_age_s:.0f}s old "
                    "(a consumer died or keeps failing; check the dead-letter stream and the service logs)"
                )
            if g.lag is not None and g.lag > max_lag:
                out.append(f"{st.stream} group {g.name}: lag {g.lag} entries (scale the consuming service)")
            if g.consumers == 0 and (g.lag or 0) > 0:
                out.append(f"{st.stream} group {g.name}: {g.lag} entries waiting and no consumer (start it)")
    return out


def as_dict(statuses: list[StreamStatus]) -> list[dict[str, Any]]:
    return [asdict(s) for s in statuses]
