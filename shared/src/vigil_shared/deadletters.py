"""Operator access to ``vigil.deadletter``: list, show, replay into the original stream, purge."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from vigil_shared import streams
from vigil_shared.envelope import decode_entry, text_to_fields
from vigil_shared.events import DeadLetter


def _record(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    try:
        body, _ = decode_entry(fields)
        dl = DeadLetter.model_validate_json(body)
        return {"id": entry_id.decode(), **dl.model_dump(mode="json")}
    except Exception as exc:
        return {
            "id": entry_id.decode(),
            "service": "?",
            "stream": "?",
            "attempts": 0,
            "error": f"unreadable dead-letter record: {exc}",
            "fields": {},
        }


async def list_entries(url: str, limit: int = 20) -> list[dict[str, Any]]:
    redis = Redis.from_url(url)
    try:
        rows = streams.entries(await redis.xrevrange(streams.DEADLETTER, count=limit))
        return [_record(i, f) for i, f in rows]
    finally:
        await redis.aclose()


async def get_entry(url: str, entry_id: str) -> dict[str, Any] | None:
    redis = Redis.from_url(url)
    try:
        rows = streams.entries(await redis.xrange(streams.DEADLETTER, entry_id, entry_id))
        return _record(*rows[0]) if rows else None
    finally:
        await redis.aclose()


async def replay(url: str, entry_ids: list[str] | None, keep: bool = False) -> int:
    """XADD each record's original fields back to its stream (new entry id), then drop the record."""
    redis = Redis.from_url(url)
    try:
        if entry_ids:
            rows: list[streams.Entry] = []
            for i in entry_ids:
                rows += streams.entries(await redis.xrange(streams.DEADLETTER, i, i))
        else:
            rows = streams.entries(await redis.xrange(streams.DEADLETTER))
        n = 0
        for entry_id, fields in rows:
            rec = _record(entry_id, fields)
            if not rec.get("fields") or rec["stream"] == "?":
                continue
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xadd(rec["stream"], text_to_fields(rec["fields"]))  # type: ignore[arg-type]
                if not keep:
                    pipe.xdel(streams.DEADLETTER, entry_id)
                await pipe.execute()
            n += 1
        return n
    finally:
        await redis.aclose()


async def purge(url: str, entry_ids: list[str] | None) -> int:
    redis = Redis.from_url(url)
    try:
        if entry_ids:
            return int(await redis.xdel(streams.DEADLETTER, *entry_ids))
        n = int(await redis.xlen(streams.DEADLETTER))
        await redis.xtrim(streams.DEADLETTER, maxlen=0)
        return n
    finally:
        await redis.aclose()
