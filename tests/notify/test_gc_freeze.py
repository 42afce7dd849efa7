"""VIGIL_NOTIFY_GC_FREEZE: the index build freezes what is alive, at most once per interval."""

from __future__ import annotations

import gc

import vigil_notify.subscriptions as subs_mod
from vigil_notify.notifier import Notifier
from vigil_notify.subscriptions import SubscriptionStore, freeze_long_lived

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
