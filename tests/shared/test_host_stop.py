"""Host.stop against a real Redis: once stopping has begun, no worker's watchdog restarts the consume
loop the broker is stopping (a restart would read new entries during shutdown); a cancelled background
loop is not restarted by its supervisor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from structlog.testing import capture_logs
from vigil_shared.events import AlertReceived
from vigil_shared.runtime import Host, Service, ServiceContext, ServiceParts
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import StreamWorker


async def _ignore(_: AlertReceived) -> None:
    return None


BROKER_STOP_S = 2.5
"""Longer than the watchdog's 1 s tick."""


async def test_a_slow_broker_stop_is_not_undone_by_the_watchdog(redis_url: str) -> None:
    settings = VigilSettings(
        redis_url=redis_url, consumer_name="stopper", block_ms=50, retention_interval_s=0, http_port=0
    )

    async def build(ctx: ServiceContext) -> ServiceParts:
        worker: StreamWorker[AlertReceived] = StreamWorker(
            service="stopper", stream="test.stop.in", group="stoppers", model=AlertReceived,
            handler=_ignore, settings=ctx.settings,
        )  # fmt: skip
        return ServiceParts(workers=[worker])

    host = Host([Service(name="stopper", build=build)], settings)
    await host.start()
    (worker,) = host.workers
    assert worker.subscriber_running
    seen_stopping: list[bool] = []
    real_stop = host.broker.stop

    async def slow_stop(*args: Any, **kwargs: Any) -> None:
        # what a broker waiting for a long batch in flight looks like to the watchdog (1 s ticks):
        # the consume loop is stopped while the broker's stop has not returned yet
        seen_stopping.append(worker._stopping)
        await real_stop(*args, **kwargs)
        await asyncio.sleep(BROKER_STOP_S)

    host.broker.stop = slow_stop  # type: ignore[method-assign]
    with capture_logs() as logs:
        await host.stop()
    assert seen_stopping == [True]  # the workers were told first
    # and no restart was even tried (before, one was, and failed on the disconnected broker)
    assert not [e for e in logs if str(e.get("event", "")).startswith("consume loop restart")], logs
    assert worker.stats.restarts == 0
    assert not worker.subscriber_running


async def test_a_cancellation_that_comes_back_as_a_redis_error_is_not_restarted_as_a_crash(redis_url: str) -> None:
    """The supervisor of a background loop: when the loop's Redis client turns the task's cancellation
    into one of its errors, the loop is not restarted (it went on for ever when the cancellation came
    from outside Host.stop, e.g. asyncio.run's final cancel, and with a stop's back-off of up to 30 s)."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    settings = VigilSettings(redis_url=redis_url, consumer_name="sup", retention_interval_s=0, http_port=0)
    host = Host([], settings)
    running = asyncio.Event()
    calls = 0

    async def loop_whose_redis_turns_the_cancel_into_an_error() -> None:
        nonlocal calls
        calls += 1
        while True:
            await host.redis.ping()
            running.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError as exc:
                raise RedisTimeoutError("Timeout reading from socket") from exc

    with capture_logs() as logs:
        task = asyncio.create_task(host._supervise(loop_whose_redis_turns_the_cancel_into_an_error))
        await asyncio.wait_for(running.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2.5)  # the restart back-off is 1 s
    try:
        assert done, "the supervisor restarted the cancelled loop"
        assert task.cancelled()
        assert calls == 1
        assert not [e for e in logs if "crashed" in str(e.get("event", ""))], logs
    finally:
        if not done:  # the loop's second run is cancelled again; give it its Redis error and stop it
            host._stop.set()
            task.cancel()
            await asyncio.wait([task], timeout=5)
        await host.redis.aclose()


async def test_stop_names_a_loop_that_ran_on_after_its_cancellation_and_cancels_it_again(redis_url: str) -> None:
    """A background loop without the check that loses its cancellation inside a tick: Host.stop waits
    3 s for it, names it in a warning, cancels it again, and stops (before: the same wait, silently)."""
    settings = VigilSettings(redis_url=redis_url, consumer_name="stubborn", retention_interval_s=0, http_port=0)
    running = asyncio.Event()
    ticks = 0

    async def stubborn() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks == 1:
                await host.redis.ping()
                running.set()
                with contextlib.suppress(asyncio.CancelledError):  # lost, and nothing checks
                    await asyncio.sleep(3600)
            # no Redis call from here on: the second cancellation must not be lost as well (a ping
            # every 10 ms loses one now and then, which is what the loops' checks are for)
            await asyncio.sleep(0.01)

    async def build(ctx: ServiceContext) -> ServiceParts:
        return ServiceParts(background=[stubborn])

    host = Host([Service(name="stubborn", build=build)], settings)
    await host.start()
    await asyncio.wait_for(running.wait(), 5)
    (task,) = host.tasks
    with capture_logs() as logs:
        started = asyncio.get_running_loop().time()
        await host.stop()
        took = asyncio.get_running_loop().time() - started
    late = [e for e in logs if str(e.get("event", "")).startswith("still running after the stop")]
    assert [e["tasks"] for e in late] == [["stubborn"]], logs
    assert task.cancelled()
    assert 3.0 <= took < 5.5
