"""StreamWorker's adaptations of FastStream's per-batch path, against a real Redis: the batch body is
handed over without a worker thread, and the subscription's per-read copy is shallow but equal."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Any

import fast_depends.utils
import pytest
from fast_depends.core import CallModel
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis

# the per-entry worker tests' helpers (tests/shared is on sys.path: pytest's rootdir-relative import)
from test_worker import alert, wait_for
from vigil_shared.events import AlertReceived
from vigil_shared.runtime import make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, StreamWorker, _StreamSub, publish_events

IN, OUT, GROUP = "test.fs.in", "test.fs.out", "fs"

_SLOTS = sorted({slot for klass in StreamSub.__mro__ for slot in getattr(klass, "__slots__", ())})


def _fields(sub: StreamSub) -> dict[str, Any]:
    return {name: getattr(sub, name, "<unset>") for name in _SLOTS}


@pytest.mark.parametrize("prefix", ["", "tenant-a:"])
def test_stream_sub_prefix_copy_equals_faststreams_deep_copy(prefix: str) -> None:
    args: dict[str, Any] = dict(group="g", consumer="c-1", batch=True, max_records=123, polling_interval=250, maxlen=9)
    ours, stock = _StreamSub("s.in", **args), StreamSub("s.in", **args)
    before = _fields(ours)
    copied = ours.add_prefix(prefix)
    assert isinstance(copied, _StreamSub)
    assert (
        _fields(copied) == _fields(stock.add_prefix(prefix)) == _fields(copy.deepcopy(ours)) | {"name": f"{prefix}s.in"}
    )
    assert len(_SLOTS) >= 12  # every slot of FastStream's class is compared
    assert {"name", "group", "consumer"} <= set(_SLOTS)
    assert copied is not ours
    copied.name = "changed"  # an independent object: the subscription itself is untouched
    assert _fields(ours) == before


async def _relay_through_worker(redis: Redis, redis_url: str, broker: RedisBroker, n: int = 30) -> list[list[str]]:
    """Run a batch worker (batches of at most 7) on ``broker`` until it relayed ``n`` alerts; the
    alert ids of each batch its handler got."""
    seen: list[list[str]] = []

    async def relay(events: Sequence[AlertReceived]) -> Sequence[Sequence[Publication]]:
        seen.append([e.alert_id for e in events])
        return [[Publication(OUT, e)] for e in events]

    settings = VigilSettings(
        redis_url=redis_url, consumer_name="c1", block_ms=50, batch_size=7, claim_interval_s=60, retention_interval_s=0
    )
    client = Redis.from_url(redis_url)
    worker = StreamWorker(
        service="tester", stream=IN, group=GROUP, model=AlertReceived, batch_handler=relay, settings=settings
    )
    worker.attach(broker)
    await worker.prepare(client)
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(n)], 10_000)
    await broker.start()
    await worker.start_background(client)
    try:

        async def all_out() -> bool:
            return bool(await redis.exists(OUT)) and int(await redis.xlen(OUT)) >= n

        await wait_for(all_out)
        await asyncio.sleep(0.1)  # a few empty polls too
    finally:
        await worker.stop()
        await broker.stop()
        await client.aclose()
    assert [a for batch in seen for a in batch] == [f"al_{i}" for i in range(n)]
    assert len(seen) >= n // 7
    return seen


async def test_batches_are_handed_over_without_a_worker_thread(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a broker with FastStream's dependency injection on (its default), fast_depends runs
    synchronous parameter hooks in a thread pool: the body's no-cast field must not be one (it cost
    a thread hand-off per read batch)."""
    to_thread: list[str] = []
    real = fast_depends.utils.run_in_threadpool

    async def spy(func: Any, *args: Any, **kwargs: Any) -> Any:
        to_thread.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(fast_depends.utils, "run_in_threadpool", spy)
    await _relay_through_worker(redis, redis_url, RedisBroker(redis_url, apply_types=True))
    assert to_thread == []


async def test_vigils_broker_hands_batches_over_without_dependency_injection(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make_broker``'s broker calls the worker's handler with the raw batch: no fast_depends call
    model is solved per batch (the worker injects nothing)."""
    solved: list[str] = []
    real = CallModel.asolve

    async def spy(self: CallModel, *args: Any, **kwargs: Any) -> Any:
        solved.append(getattr(self.call, "__name__", repr(self.call)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(CallModel, "asolve", spy)
    await _relay_through_worker(redis, redis_url, make_broker(redis_url))
    assert solved == []
