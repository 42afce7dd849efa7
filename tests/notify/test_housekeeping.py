"""notify's housekeeping loop stops when a tick lost its cancellation (real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError
from shutdown_support import cancel_and_expect_end
from vigil_notify.service import housekeeping_loop

from .test_notifier import notifier


@pytest.mark.parametrize("how", ["swallowed", "as a redis error"])
async def test_the_loop_stops_when_a_tick_lost_its_cancellation(
    redis: Redis, settings: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A tick whose Redis call loses the cancellation (redis-py's asyncio client can: see
    vigil_shared.cancellation), or turns it into one of its errors (which the loop logs and carries
    on from), still ends the loop after that tick instead of ticking on."""
    n = notifier(redis, settings)
    in_tick = asyncio.Event()
    ticks = 0
    real_write_unmarked = n.deliverer.write_unmarked

    async def write_unmarked_that_loses_the_cancel() -> Any:
        nonlocal ticks
        ticks += 1
        result = await real_write_unmarked()  # the real call (nothing to write) and a real Redis round trip
        await redis.ping()
        in_tick.set()
        if ticks > 1:
            await asyncio.sleep(3600)  # a later tick is cancelled as usual
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            if how == "as a redis error":
                raise RedisTimeoutError("Timeout reading from socket") from exc
        return result

    monkeypatch.setattr(n.deliverer, "write_unmarked", write_unmarked_that_loses_the_cancel)
    task = asyncio.create_task(housekeeping_loop(n, redis, 0.01, 1000))
    await asyncio.wait_for(in_tick.wait(), 5)
    await cancel_and_expect_end(task, 2, "housekeeping went on ticking after its cancellation")
    assert ticks == 1
    await n.aclose()
