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

    monkeypatch.setattr(intake, "publish_entries", broken)
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

    monkeypatch.setattr(intake, "publish_entries", broken)
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


async def test_one_info_summary_per_call_and_per_alert_lines_at_debug(redis: Redis) -> None:
    from structlog.testing import capture_logs

    [first] = await accept(redis, [_draft(url="https://x.test/a")])
    drafts = [
        _draft(url="https://x.test/a"),  # duplicate
        _draft("Changed text.", url="https://x.test/a"),  # revision 2
        _draft(url="https://x.test/b"),
        _draft(url="https://x.test/c").model_copy(update={"source_name": "other"}),
    ]
    with capture_logs() as logs:
        results = await accept(redis, drafts)
    info = [e for e in logs if e["log_level"] != "debug"]
    assert info == [
        {
            "event": "alerts accepted",
            "log_level": "info",
            "alerts": 4,
            "new": 2,
            "revisions": 1,
            "duplicates": 1,
            "published": 3,
            "sources": ["other", "t"],
            "source_kinds": ["api"],
        }
    ]
    per_alert = [e for e in logs if e["log_level"] == "debug"]
    assert [e["event"] for e in per_alert] == [
        "alert duplicate, not published",
        "alert published",
        "alert published",
        "alert published",
    ]
    assert [e["correlation_id"] for e in per_alert] == [r.correlation_id for r in results]
    assert per_alert[0]["correlation_id"] == first.correlation_id


async def test_the_summary_lists_a_few_sources_and_counts_the_rest(redis: Redis) -> None:
    from structlog.testing import capture_logs

    drafts = [
        _draft(url=f"https://x.test/{i}").model_copy(update={"source_name": f"s{i}"}) for i in range(8)
    ]
    with capture_logs() as logs:
        await accept(redis, drafts)
    [summary] = [e for e in logs if e["event"] == "alerts accepted"]
    assert summary["sources"] == ["s0", "s1", "s2", "s3", "s4", "+3 more"]
    assert (summary["alerts"], summary["new"]) == (8, 8)
