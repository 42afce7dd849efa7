"""The stream worker's helper loops stop when a tick lost its cancellation (real Redis).

Host.stop ends them by ``begin_stop`` (``_stopping``) before it cancels them; these tests cancel them
without it (as asyncio.run's final cancel or a caller does), so only the pending cancel request
(vigil_shared.cancellation) can end a loop whose tick swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from shutdown_support import cancel_and_expect_end
from test_worker import GROUP, IN, alert, relay, workers  # noqa: F401  (workers: the fixture)
from vigil_shared.events import AlertReceived
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, StreamWorker, publish_events


async def _loses_the_first_cancel(calls: int, reached: asyncio.Event) -> None:
    """What a tick does after its real Redis calls: the first call loses its cancellation, as a redis-py
    call can; a later one is cancelled as usual."""
    reached.set()
    if calls == 1:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
    else:
        await asyncio.sleep(3600)


async def test_the_claim_loop_stops_when_a_claim_pass_lost_its_cancellation(
    workers: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker: StreamWorker[AlertReceived] = await workers(relay)
    real_claim_once = worker.claim_once
    in_pass = asyncio.Event()
    passes = 0

    async def claim_once_that_loses_the_cancel() -> int:
        nonlocal passes
        passes += 1
        claimed = await real_claim_once()  # a real XAUTOCLAIM
        await _loses_the_first_cancel(passes, in_pass)
        return claimed

    monkeypatch.setattr(worker, "claim_once", claim_once_that_loses_the_cancel)
    claim_loop = worker._tasks[0]
    assert claim_loop.get_name().startswith("claim:")
    await asyncio.wait_for(in_pass.wait(), 5)
    await cancel_and_expect_end(claim_loop, 2, "the claim loop went on after its cancellation")
    assert passes == 1
    assert not worker._stopping  # ended by its cancellation, not by a stop


async def test_the_watchdog_stops_when_a_restart_lost_its_cancellation(
    workers: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker: StreamWorker[AlertReceived] = await workers(relay)
    real_ensure_group = worker.ensure_group
    in_restart = asyncio.Event()
    restarts = 0

    async def ensure_group_that_loses_the_cancel() -> None:
        nonlocal restarts
        restarts += 1
        await real_ensure_group()  # a real XGROUP CREATE (the group exists: BUSYGROUP)
        await _loses_the_first_cancel(restarts, in_restart)

    monkeypatch.setattr(worker, "ensure_group", ensure_group_that_loses_the_cancel)
    await worker._subscriber.stop()  # the consume loop is down: the watchdog's next tick restarts it
    watchdog = worker._tasks[1]
    assert watchdog.get_name().startswith("watchdog:")
    await asyncio.wait_for(in_restart.wait(), 5)
    # the watchdog ticks every 1 s
    await cancel_and_expect_end(watchdog, 2.5, "the watchdog went on after its cancellation")
    assert restarts == 1
    assert not worker._stopping


@pytest.fixture
async def claimer(redis_url: str) -> AsyncIterator[tuple[StreamWorker[AlertReceived], Redis]]:
    """A worker with no broker and no helper loops; claim_once is called by the test itself."""
    client = Redis.from_url(redis_url)
    settings = VigilSettings(
        redis_url=redis_url, consumer_name="claimer", batch_size=2, claim_idle_ms=100, retention_interval_s=0
    )
    worker: StreamWorker[AlertReceived] = StreamWorker(
        service="tester", stream=IN, group=GROUP, model=AlertReceived, handler=relay, settings=settings
    )
    await worker.prepare(client)
    yield worker, client
    await client.aclose()


async def test_a_claim_pass_takes_no_further_page_once_a_page_lost_its_cancellation(
    claimer: tuple[StreamWorker[AlertReceived], Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six entries a dead consumer read, claimed two per page: a cancellation lost while the first page
    is processed ends the pass there instead of after all three pages."""
    worker, redis = claimer
    await publish_events(redis, [Publication(IN, alert(n)) for n in range(6)], 10_000)
    await redis.xreadgroup(GROUP, "dead", {IN: ">"}, count=6)
    await asyncio.sleep(0.15)  # idle past claim_idle_ms
    in_page = asyncio.Event()
    pages: list[int] = []

    async def process_that_loses_the_cancel(
        entries: Sequence[tuple[bytes, Any]], delivery_counts: dict[bytes, int] | None = None
    ) -> None:
        pages.append(len(entries))
        if len(pages) == 1:
            await _loses_the_first_cancel(1, in_page)

    monkeypatch.setattr(worker, "process", process_that_loses_the_cancel)
    task = asyncio.create_task(worker.claim_once())
    await asyncio.wait_for(in_page.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done
    assert task.cancelled(), f"the pass went on: {task.result()} entries over pages {pages}"
    assert pages == [2]
