from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

import pytest
from vigil_notify.notifier import Notifier
from vigil_notify.subscriptions import SubscriptionStore
from vigil_shared.events import CapInfo, NotificationDelivered, NotificationFailed

from .helpers import MOSCOW, NOW, SPB, make_alert, make_sub


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def notifier(redis, settings, clock=None, owner=None) -> Notifier:
    return Notifier(redis, settings=settings, clock=clock or Clock(), sleep=no_sleep, owner=owner)


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_moscow_alert_reaches_the_right_people(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    for sub in (
        make_sub(
            "traveller",
            [f"jsonl://{out}"],
            places=["Moscow, RU"],
            active={"from": "2026-01-01", "until": "2027-12-31"},
        ),
        make_sub("near", [f"jsonl://{out}"], near={"lat": 55.75, "lon": 37.62, "radius_km": 100}),
        make_sub("spb", [f"jsonl://{out}"], places=["Saint Petersburg"]),
        make_sub("natural", [f"jsonl://{out}"], threat_types=["natural_disaster"]),
    ):
        await store.put(sub)
    n = notifier(redis, settings)
    events = await n.handle(make_alert())
    assert sorted(e.subscription_id for e in events) == ["near", "traveller"]
    assert all(isinstance(e, NotificationDelivered) and e.attempt == 1 for e in events)
    rows = {r["subscription_id"]: r for r in lines(out)}
    assert set(rows) == {"near", "traveller"}
    assert rows["traveller"]["reason"].startswith("matched: place Moscow, RU")
    assert "Why you got this: matched: place Moscow, RU" in rows["traveller"]["rendered_text"]
    assert rows["near"]["places"] == ["Moscow, RU"]
    await n.aclose()


async def test_retried_twice_then_delivered_once(redis, settings, receiver_factory) -> None:
    rx = receiver_factory(plan=lambda n: 503 if n <= 2 else 200)
    await SubscriptionStore(redis).put(make_sub("desk", [rx.webhook_url()]))
    n = notifier(redis, settings)
    events = await n.handle(make_alert())
    assert [(type(e).__name__, e.attempt) for e in events] == [
        ("NotificationFailed", 1), ("NotificationFailed", 2), ("NotificationDelivered", 3),
    ]  # fmt: skip
    assert all(not e.permanent for e in events if isinstance(e, NotificationFailed))
    assert rx.statuses == [503, 503, 200]
    assert len(rx.received) == 1
    assert rx.bad_signatures == 0
    # a redelivered stream entry sends nothing again
    assert await n.handle(make_alert()) == []
    assert len(rx.received) == 1
    await n.aclose()


async def test_always_failing_is_dead_lettered_others_unaffected(redis, settings, receiver_factory, tmp_path):
    bad = receiver_factory(plan=lambda n: 500)
    out = tmp_path / "ok.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [bad.webhook_url(), f"jsonl://{out}"]))
    n = notifier(redis, settings)
    result = await n.process(make_alert(), entry_id="1700000000000-0")
    failed = [e for e in result.events if isinstance(e, NotificationFailed)]
    assert [e.attempt for e in failed] == [1, 2, 3, 4]
    assert [e.permanent for e in failed] == [False, False, False, True]
    assert "gave up after 4 attempts" in failed[-1].error
    (dl,) = result.dead_letters
    assert dl.entry_id == "1700000000000-0"
    assert dl.attempts == 4
    assert dl.fields["subscription_id"] == "desk"
    assert "500" in dl.error
    assert len(lines(out)) == 1  # the other channel of the same subscription got it
    # the claim was released: a replay from the dead-letter stream can try again
    assert await n.deliverer.ledger.state(failed[-1].idempotency_key) is None
    await n.aclose()


async def test_permanent_failure_is_not_retried(redis, settings, receiver_factory) -> None:
    rx = receiver_factory(plan=lambda n: 404)
    await SubscriptionStore(redis).put(make_sub("desk", [rx.webhook_url()]))
    n = notifier(redis, settings)
    result = await n.process(make_alert())
    assert [(e.attempt, e.permanent) for e in result.events] == [(1, True)]
    assert len(result.dead_letters) == 1
    assert rx.statuses == [404]
    await n.aclose()


async def test_hanging_channel_times_out_others_delivered(
    redis, settings, receiver_factory, tmp_path
) -> None:
    hang = receiver_factory(hang=True)
    out = tmp_path / "ok.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("slow", [hang.webhook_url()]))
    await store.put(make_sub("fast", [f"jsonl://{out}"]))
    quick = settings.model_copy(update={"send_timeout_s": 0.3, "max_attempts": 2})
    n = notifier(redis, quick)
    result = await n.process(make_alert())
    by_sub = {(e.subscription_id, type(e).__name__, e.attempt) for e in result.events}
    assert ("fast", "NotificationDelivered", 1) in by_sub
    slow = [e for e in result.events if e.subscription_id == "slow"]
    assert all(isinstance(e, NotificationFailed) and "timed out" in e.error for e in slow)
    assert slow[-1].permanent
    assert len(lines(out)) == 1
    await n.aclose()


async def test_two_replicas_deliver_each_pair_exactly_once(
    redis, settings, receiver_factory, tmp_path
) -> None:
    rx = receiver_factory()
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    for i in range(5):
        await store.put(make_sub(f"sub-{i}", [f"jsonl://{out}", rx.webhook_url(f"/s{i}")]))
    a, b = notifier(redis, settings, owner="replica-a"), notifier(redis, settings, owner="replica-b")
    alert = make_alert()
    results = await asyncio.gather(a.process(alert), a.process(alert), b.process(alert), b.process(alert))
    delivered = [e for r in results for e in r.events if isinstance(e, NotificationDelivered)]
    assert len(delivered) == 10
    assert len({e.idempotency_key for e in delivered}) == 10
    rows = lines(out)
    assert sorted(r["subscription_id"] for r in rows) == [f"sub-{i}" for i in range(5)]
    assert len(rx.received) == 5
    # and the events: exactly one NotificationDelivered per (subscription, channel) across replicas
    await asyncio.gather(a.handle(alert), b.handle(alert))  # redelivery: nothing more
    assert len(lines(out)) == 5
    assert len(rx.received) == 5
    await a.aclose()
    await b.aclose()


async def test_two_replicas_events_once(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}", "console://"]))
    a, b = notifier(redis, settings, owner="a"), notifier(redis, settings, owner="b")
    ea, eb = await asyncio.gather(a.handle(make_alert()), b.handle(make_alert()))
    delivered = [e for e in ea + eb if isinstance(e, NotificationDelivered)]
    assert sorted(e.channel for e in delivered) == sorted(["console://", f"jsonl://{out}"])
    assert len({e.idempotency_key for e in delivered}) == 2


async def test_update_goes_only_to_original_recipients(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("moscow", [f"jsonl://{out}"], places=["Moscow"]))
    await store.put(make_sub("spb", [f"jsonl://{out}"], places=["Saint Petersburg"]))
    n = notifier(redis, settings)
    await n.handle(make_alert(alert_id="orig"))
    # a new subscriber appears after the original went out; the update now also names St Petersburg
    await store.put(make_sub("late-desk", [f"jsonl://{out}"]))
    update = make_alert(alert_id="orig", revision=2, revision_of="orig", locations=(MOSCOW, SPB),
                        title="Security Alert (updated): threats in Moscow and St Petersburg")  # fmt: skip
    events = await n.handle(update)
    assert [(e.subscription_id, e.kind, e.revision) for e in events] == [("moscow", "update", 2)]
    last = lines(out)[-1]
    assert last["kind"] == "update"
    assert last["title"].startswith("Security Alert (updated)")
    assert "UPDATE to an alert you received earlier" in last["rendered_text"]
    await n.aclose()


async def test_cap_cancel_reaches_original_recipients_marked_cancel(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(
        make_sub("quake", [f"jsonl://{out}"], threat_types=["natural_disaster"])
    )
    sent = datetime(2026, 11, 25, 10, 0, tzinfo=NOW.tzinfo)
    cap = CapInfo(identifier="EQ-1", sender="usgs@example.gov", sent=sent, severity="Severe")
    n = notifier(redis, settings)
    first = await n.handle(make_alert(alert_id="cap-1", threats=("natural_disaster",), cap=cap,
                                      title="Earthquake near Moscow"))  # fmt: skip
    assert [e.subscription_id for e in first] == ["quake"]
    ref = f"usgs@example.gov,EQ-1,{sent.isoformat()}"
    cancel = CapInfo(
        identifier="EQ-2", sender="usgs@example.gov", sent=sent, msg_type="Cancel", references=(ref,)
    )
    events = await n.handle(
        make_alert(
            alert_id="cap-2",
            threats=("natural_disaster",),
            cap=cancel,
            title="Earthquake near Moscow: cancelled",
            severity="Minor",
        )
    )
    assert [(e.subscription_id, e.kind) for e in events] == [("quake", "cancel")]
    assert lines(out)[-1]["title"].endswith("cancelled")
    assert "CANCELLED" in lines(out)[-1]["rendered_text"]
    await n.aclose()


async def test_throttle_folds_into_one_digest(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    clock = Clock()
    n = notifier(redis, settings.model_copy(update={"throttle_max": 2, "digest_delay_s": 600}), clock)
    for i in range(5):
        await n.handle(make_alert(alert_id=f"a{i}", title=f"Alert {i}", text=f"text {i}"))
    assert [r["alert_id"] for r in lines(out)] == ["a0", "a1"]
    assert (await n.flush_digests()).events == []  # not due yet
    clock.now += timedelta(seconds=601)
    result = await n.flush_digests()
    (event,) = result.events
    assert event.kind == "digest"
    digest = lines(out)[-1]
    assert digest["kind"] == "digest"
    assert [x["alert_id"] for x in digest["alerts"]] == ["a2", "a3", "a4"]
    assert (await n.flush_digests()).events == []  # flushed once
    # an Extreme alert is never folded
    await n.handle(make_alert(alert_id="x", title="Extreme", text="now", severity="Extreme"))
    assert lines(out)[-1]["alert_id"] == "x"
    await n.aclose()


async def test_identical_alert_from_another_source_reaches_subscriber_once(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    n = notifier(redis, settings)
    await n.handle(make_alert(alert_id="from-rss"))
    result = await n.process(make_alert(alert_id="from-api"))
    assert result.events == []
    assert result.duplicates == [("desk", "from-rss")]
    assert len(lines(out)) == 1
    await n.aclose()


async def test_quiet_hours_defer_and_extreme_breaks_through(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    quiet = {"start": "22:00", "end": "07:00", "tz": "Europe/Moscow"}
    await SubscriptionStore(redis).put(make_sub("sleeper", [f"jsonl://{out}"], quiet_hours=quiet))
    clock = Clock(datetime(2026, 11, 25, 21, 0, tzinfo=NOW.tzinfo))  # 00:00 in Moscow
    n = notifier(redis, settings, clock)
    result = await n.process(make_alert(alert_id="night"))
    assert result.events == []
    ((sub_id, _, due),) = result.deferred
    assert (sub_id, due) == ("sleeper", datetime(2026, 11, 26, 4, 0, tzinfo=NOW.tzinfo))  # 07:00 Moscow
    extreme = await n.handle(make_alert(alert_id="boom", title="Explosion", text="now", severity="Extreme"))
    assert [e.alert_id for e in extreme] == ["boom"]
    clock.now = datetime(2026, 11, 26, 3, 59, tzinfo=NOW.tzinfo)
    assert (await n.due_deferred()).events == []
    clock.now = datetime(2026, 11, 26, 4, 0, tzinfo=NOW.tzinfo)
    released = await n.due_deferred()
    assert [e.alert_id for e in released.events] == ["night"]
    assert [r["alert_id"] for r in lines(out)] == ["boom", "night"]
    assert "held for quiet hours" in lines(out)[-1]["reason"]
    assert (await n.due_deferred()).events == []
    await n.aclose()


async def test_secrets_never_in_events_dead_letters_or_logs(
    redis, settings, receiver_factory, smtp_server, caplog, capsys
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = receiver_factory(plan=lambda n: 500, secret="HOOK-SECRET-123")
    smtp_server.reject_with = "550 5.7.1 rejected"
    mail = (
        f"mailto://vigil:MAIL-PASSWORD-456@127.0.0.1:{smtp_server.port}?to=a@example.com&from=v@example.com"
    )
    await SubscriptionStore(redis).put(make_sub("desk", [bad.webhook_url(), mail]))
    n = notifier(redis, settings.model_copy(update={"max_attempts": 2}))
    result = await n.process(make_alert())
    assert result.events
    assert result.dead_letters
    dumped = [e.model_dump_json() for e in result.events + result.dead_letters]
    captured = capsys.readouterr()
    haystack = "\n".join([*dumped, caplog.text, captured.out, captured.err])
    for secret in ("HOOK-SECRET-123", "MAIL-PASSWORD-456"):
        assert secret not in haystack
    assert any("****" in e.channel for e in result.events)
    await n.aclose()


async def test_subscription_change_reaches_running_notifier(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    n = notifier(redis, settings)
    assert await n.handle(make_alert(alert_id="before")) == []
    other_replica_store = SubscriptionStore(redis)
    await other_replica_store.put(make_sub("desk", [f"jsonl://{out}"]))
    assert [e.subscription_id for e in await n.handle(make_alert(alert_id="after", text="different"))] == [
        "desk"
    ]
    await other_replica_store.delete("desk")
    assert await n.handle(make_alert(alert_id="gone", text="another")) == []
    await n.aclose()


@pytest.mark.parametrize("severity", ["Severe", "Extreme"])
async def test_preview_has_no_side_effects(redis, settings, tmp_path, severity) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    n = notifier(redis, settings)
    (m,) = await n.preview(make_alert(severity=severity))
    assert m.subscription.id == "desk"
    assert not out.exists()
