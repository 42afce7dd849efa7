"""intake.accept on real Redis: dedup + one publishing transaction, nothing half done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from vigil_ingest import intake
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.intake import accept
from vigil_shared.events import AlertReceived

ReadStream = Callable[[Redis], Awaitable[list[AlertReceived]]]


def _draft(text: str = "Protest at the central square; avoid the area.", **kw: Any) -> AlertDraft:
    return AlertDraft(source_kind="api", source_name="t", title=kw.pop("title", "Protest"), text=text, **kw)


async def test_failed_publish_undoes_registration_so_a_retry_is_new(
    redis: Redis, stream_alerts: ReadStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_a: Any, **_k: Any) -> list[bytes]:
        raise ConnectionError("redis went away mid-publish")

    monkeypatch.setattr(intake, "publish_events", broken)
    with pytest.raises(ConnectionError):
        await accept(redis, [_draft(), _draft(url="https://x.test/a")])
    assert await stream_alerts(redis) == []
    monkeypatch.undo()

    results = await accept(redis, [_draft(), _draft(url="https://x.test/a")])
    assert [r.status for r in results] == ["new", "new"]
    assert len(await stream_alerts(redis)) == 2


async def test_failed_publish_of_a_revision_keeps_the_first_revision(
    redis: Redis, stream_alerts: ReadStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first] = await accept(redis, [_draft(url="https://x.test/a")])

    async def broken(*_a: Any, **_k: Any) -> list[bytes]:
        raise ConnectionError("down")

    monkeypatch.setattr(intake, "publish_events", broken)
    with pytest.raises(ConnectionError):
        await accept(redis, [_draft("Changed text.", url="https://x.test/a")])
    monkeypatch.undo()
    [dup] = await accept(redis, [_draft(url="https://x.test/a")])
    assert dup.status == "duplicate"
    assert dup.correlation_id == first.correlation_id
    [rev] = await accept(redis, [_draft("Changed text.", url="https://x.test/a")])
    assert (rev.status, rev.revision, rev.revision_of) == ("revision", 2, first.alert_id)
    assert [e.revision for e in await stream_alerts(redis)] == [1, 2]


async def test_an_invalid_draft_fails_the_call_before_anything_is_registered(
    redis: Redis, stream_alerts: ReadStream
) -> None:
    bad = _draft().model_copy(update={"source_kind": "carrier-pigeon"})  # model_copy skips validation
    with pytest.raises(ValueError, match="source_kind"):
        await accept(redis, [_draft(url="https://x.test/ok"), bad])
    assert await stream_alerts(redis) == []
    assert await redis.keys("vigil:dedup:*") == []


async def test_concurrent_replicas_publish_each_alert_once(redis_url: str, stream_alerts: ReadStream) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        drafts = [_draft(f"Alert number {i} text body.", title=f"Alert {i}") for i in range(20)]
        outcomes = await asyncio.gather(*(accept(c, drafts) for c in clients))
        statuses = [[r.status for r in out] for out in outcomes]
        for i in range(20):
            assert sorted(s[i] for s in statuses) == ["duplicate", "duplicate", "duplicate", "new"]
        assert len(await stream_alerts(clients[0])) == 20
    finally:
        for c in clients:
            await c.aclose()
