"""VIGIL_NOTIFY_GC_FREEZE: the index build freezes what is alive, at most once per interval."""

from __future__ import annotations

import gc

import vigil_notify.subscriptions as subs_mod
from vigil_notify.notifier import Notifier
from vigil_notify.subscriptions import SubscriptionStore, freeze_long_lived, space_full_collections

from .helpers import make_sub


async def test_index_build_freezes_long_lived_objects_once_per_interval(redis, settings, monkeypatch) -> None:
    monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
    try:
        await SubscriptionStore(redis).put(make_sub("desk"))
        n = Notifier(redis, settings=settings.model_copy(update={"gc_freeze": True}))
        assert n.store.freeze_gc
        index = await n.store.index()
        assert gc.get_freeze_count() > 0
        assert len(index) == 1
        # the index is among the frozen objects: in none of the generations collections traverse
        assert not any(o is index for o in gc.get_objects())
        assert freeze_long_lived() is False  # within the interval: nothing done
        assert freeze_long_lived(interval_s=0) is True
        await n.aclose()
    finally:
        gc.unfreeze()


async def test_off_by_setting(redis, settings, monkeypatch) -> None:
    monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
    gc.unfreeze()
    n = Notifier(redis, settings=settings)  # the test settings turn it off
    await n.store.index()
    assert gc.get_freeze_count() == 0
    await n.aclose()


async def test_full_collections_spaced_after_the_freeze(redis, settings, monkeypatch) -> None:
    monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
    before = gc.get_threshold()
    try:
        gc.set_threshold(before[0], before[1], 10)
        n = Notifier(redis, settings=settings.model_copy(update={"gc_freeze": True}))
        assert n.store.gen1_per_full_collection == 100
        await n.store.index()
        assert gc.get_threshold() == (before[0], before[1], 100)
        space_full_collections(50)  # never lowered
        assert gc.get_threshold()[2] == 100
        await n.aclose()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_full_collections_left_alone_without_the_freeze_or_at_zero(redis, settings, monkeypatch) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(before[0], before[1], 10)
        for update in ({}, {"gc_freeze": True, "gc_gen1_per_full_collection": 0}):
            monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
            n = Notifier(redis, settings=settings.model_copy(update=update))
            await n.store.index(force=True)
            assert gc.get_threshold()[2] == 10
            await n.aclose()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_the_batch_path_leaves_no_reference_cycles(redis, settings, tmp_path) -> None:
    """Full collections are spaced out (above), so what the hot path allocates must be freed by
    reference counting alone: a cycle per alert would hold every alert's objects until the next full
    collection (a bound method kept on the per-alert state did: peak RSS 156 -> 274 MB)."""
    from vigil_shared.events import AlertClassified

    from .helpers import make_alert

    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}", "console://"]))
    n = Notifier(redis, settings=settings)
    await n.process_many([make_alert(alert_id="warm")])  # first-use caches and connections
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        results = await n.process_many([make_alert(alert_id=f"c{i}", text=f"text {i}") for i in range(20)])
        assert all(len(r.events) == 2 for r in results if not isinstance(r, BaseException))
        del results
        gc.collect()
        ours = [
            o
            for o in gc.garbage
            if type(o).__module__.startswith(("vigil_notify", "vigil_shared")) or isinstance(o, AlertClassified)
        ]
        assert ours == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        await n.aclose()


async def test_young_collections_spaced_after_the_freeze(redis, settings, monkeypatch) -> None:
    """CPython's first threshold is raised (never lowered) after the freeze: a read batch frees what
    it allocated, so young collections of the batch in flight only traversed it for nothing."""
    from vigil_notify.subscriptions import space_young_collections

    monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        n = Notifier(redis, settings=settings.model_copy(update={"gc_freeze": True}))
        assert n.store.young_threshold == 100_000
        await n.store.index()
        assert gc.get_threshold()[0] == 100_000
        space_young_collections(5_000)  # never lowered
        assert gc.get_threshold()[0] == 100_000
        await n.aclose()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_young_collections_left_alone_without_the_freeze_or_at_zero(redis, settings, monkeypatch) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        for update in ({}, {"gc_freeze": True, "gc_young_threshold": 0}):
            monkeypatch.setattr(subs_mod, "_last_freeze", float("-inf"))
            n = Notifier(redis, settings=settings.model_copy(update=update))
            await n.store.index(force=True)
            assert gc.get_threshold()[0] == 700
            await n.aclose()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
