"""vigil_shared.cancellation: a loop whose tick lost its cancellation still stops (real Redis)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis
from vigil_shared.cancellation import raise_if_cancel_requested


async def test_nothing_is_raised_without_a_cancel_request() -> None:
    raise_if_cancel_requested()  # in a task (pytest-asyncio's), with no request: returns
    assert asyncio.current_task() is not None


async def test_a_swallowed_cancellation_is_raised_again() -> None:
    reached = asyncio.Event()

    async def swallow_then_check() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            reached.set()
            await asyncio.sleep(10)
        assert asyncio.current_task().cancelling() == 1  # type: ignore[union-attr]
        raise_if_cancel_requested()
        return "ran on"

    task = asyncio.create_task(swallow_then_check())
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_request_that_was_withdrawn_is_not_raised() -> None:
    """``asyncio.timeout`` withdraws its own request (``uncancel``): the check does not see it."""

    async def timed_out() -> str:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        raise_if_cancel_requested()
        return "ran on"

    assert await asyncio.create_task(timed_out()) == "ran on"


@pytest.mark.parametrize("after_steps", range(8))
async def test_a_redis_loop_with_the_check_stops_wherever_its_cancellation_lands(
    redis: Redis, after_steps: int
) -> None:
    """A loop of MGET and a short sleep, cancelled ``after_steps`` loop iterations after its first MGET
    began. redis-py 8.1 on Python 3.11 loses a cancellation landing while a command is being written
    (``asyncio.wait_for`` around the send, CPython gh-86296): the MGET returns its reply with the
    request still counted, and without the check the loop would go on for ever (steps 1-3)."""
    await redis.set("k", "v")
    ticks = 0

    async def loop() -> None:
        nonlocal ticks
        while True:
            await redis.mget(["k", "missing"])
            ticks += 1
            raise_if_cancel_requested()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    for _ in range(after_steps):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, f"the loop ran on after its cancellation ({ticks} ticks)"
    assert task.cancelled()
    assert ticks <= 1
