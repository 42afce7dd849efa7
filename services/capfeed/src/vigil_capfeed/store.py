"""Where capfeed keeps the alerts it serves: a bounded set of alerts in Redis, every revision kept.

Keys (all under ``vigil:capfeed:``):

* ``alert:<alert_id>`` — a hash, one field per revision (``"<n>"`` -> the ``AlertClassified`` JSON);
* ``index`` — a sorted set of alert ids scored by the time of their newest stored revision.

Storing is one Lua script, so it is atomic across replicas and **idempotent**: a redelivered event
writes the same field with the same value. When the index grows past ``max_alerts`` the oldest
alerts (and all their revisions) are dropped in the same script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from vigil_shared import streams
from vigil_shared.events import AlertClassified, parse_event

PREFIX = streams.key("capfeed") + ":"
INDEX = PREFIX + "index"

_UPSERT = """
local index, prefix, id, field, doc = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local score, max = tonumber(ARGV[5]), tonumber(ARGV[6])
local created = redis.call('HSET', prefix .. id, field, doc)
local current = redis.call('ZSCORE', index, id)
if (not current) or tonumber(current) < score then
  redis.call('ZADD', index, score, id)
end
local dropped = 0
local n = redis.call('ZCARD', index)
if n > max then
  local old = redis.call('ZRANGE', index, 0, n - max - 1)
  for _, oid in ipairs(old) do
    redis.call('DEL', prefix .. oid)
    redis.call('ZREM', index, oid)
    dropped = dropped + 1
  end
end
return {created, dropped}
"""


def alert_key(alert_id: str) -> str:
    return PREFIX + "alert:" + alert_id


@dataclass(frozen=True)
class StoredAlert:
    """All stored revisions of one alert, oldest first."""

    alert_id: str
    revisions: tuple[AlertClassified, ...]

    @property
    def latest(self) -> AlertClassified:
        return self.revisions[-1]


@dataclass(frozen=True)
class StoreResult:
    created: bool
    """False when this exact revision was stored before (a redelivery)."""
    dropped: int
    """Old alerts removed to stay within ``max_alerts``."""


class AlertStore:
    def __init__(self, redis: Redis, max_alerts: int = 1000) -> None:
        self.redis = redis
        self.max_alerts = max_alerts
        self._upsert = redis.register_script(_UPSERT)

    async def put(self, event: AlertClassified) -> StoreResult:
        alert = event.alert
        score = alert.occurred_at.timestamp()
        created, dropped = await self._upsert(
            keys=[INDEX],
            args=[
                PREFIX + "alert:",
                alert.alert_id,
                str(alert.revision),
                event.model_dump_json(),
                score,
                self.max_alerts,
            ],
        )
        return StoreResult(created=bool(int(created)), dropped=int(dropped))

    async def known(self, alert_id: str) -> bool:
        return bool(await self.redis.exists(alert_key(alert_id)))

    async def get(self, alert_id: str) -> StoredAlert | None:
        raw = await self.redis.hgetall(alert_key(alert_id))
        return _decode(alert_id, raw) if raw else None

    async def latest(self, limit: int) -> list[StoredAlert]:
        """Up to ``limit`` alerts, most recently updated first."""
        ids = await self.redis.zrevrange(INDEX, 0, max(limit, 1) - 1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw_id in ids:
                pipe.hgetall(alert_key(_s(raw_id)))
            rows = await pipe.execute()
        return [_decode(_s(i), r) for i, r in zip(ids, rows, strict=True) if r]

    async def count(self) -> int:
        return int(await self.redis.zcard(INDEX))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _decode(alert_id: str, raw: dict[bytes | str, bytes | str]) -> StoredAlert:
    revs = sorted(((int(_s(k)), v) for k, v in raw.items()), key=lambda kv: kv[0])
    return StoredAlert(alert_id, tuple(parse_event(AlertClassified, v) for _, v in revs))
