"""Concurrent readers of the subscription store share one refresh (no thundering herd).

A stream batch runs its handlers concurrently; before the fix every one of them saw the stale cache
and loaded (and validated) the whole subscription set, 200 loads of 10,000 subscriptions at once.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from vigil_notify.subscriptions import Subscription, SubscriptionStore


async def test_concurrent_snapshots_load_the_set_once(redis: Redis) -> None:
    store = SubscriptionStore(redis, refresh_interval_s=60)
    for i in range(20):
        await store.put(Subscription(id=f"s{i}", name=f"s{i}", channels=["jsonl:///dev/null"]))
    loads = 0
    real_load = store._load

    async def counting_load() -> tuple[int, dict[str, Subscription]]:
        nonlocal loads
        loads += 1
        return await real_load()

    store._load = counting_load  # type: ignore[method-assign]
    results = await asyncio.gather(*(store.snapshot() for _ in range(50)))
    assert loads == 1
    assert all(len(subs) == 20 for _, subs in results)
    assert len({v for v, _ in results}) == 1

    # a write elsewhere is picked up by the next refresh, again once for many readers
    await store.put(Subscription(id="s-new", name="new", channels=["jsonl:///dev/null"]))
    results = await asyncio.gather(*(store.snapshot(force=True) for _ in range(10)))
    assert all("s-new" in subs for _, subs in results)
    assert loads <= 11
    indexes = await asyncio.gather(*(store.index() for _ in range(10)))
    assert len({id(ix) for ix in indexes}) == 1
