"""``Notifier.process_many``: a read batch at once, with the effects of one alert after the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from vigil_notify.delivery import idempotency_key
from vigil_notify.notifier import DeliveryStillInFlight, HandleResult, Notifier
from vigil_notify.subscriptions import SubscriptionStore
from vigil_shared.events import AlertClassified, NotificationDelivered, NotificationFailed

from .helpers import ISTANBUL, MOSCOW, NOW, SPB, make_alert, make_sub
from .test_notifier import Clock, lines, no_sleep


def notifier(redis, settings, clock=None, owner=None) -> Notifier:  # type: ignore[no-untyped-def]
    return Notifier(redis, settings=settings, clock=clock or Clock(), sleep=no_sleep, owner=owner)


def ok(results: list[HandleResult | BaseException]) -> list[HandleResult]:
    for r in results:
        assert isinstance(r, HandleResult), r
    return results  # type: ignore[return-value]


async def _subscriptions(redis, out: Path) -> None:  # type: ignore[no-untyped-def]
    store = SubscriptionStore(redis)
    quiet = {"start": "22:00", "end": "07:00", "tz": "Asia/Tokyo"}  # 21:00-06:00 UTC: quiet at NOW+9h
    for sub in (
        make_sub("moscow", [f"jsonl://{out}"], places=["Moscow, RU"]),
        make_sub("near-spb", [f"jsonl://{out}", "console://"], near={"lat": 59.9, "lon": 30.3, "radius_km": 50}),
        make_sub("ru", [f"jsonl://{out}"], countries=["RU"]),
        make_sub("tr-terror", [f"jsonl://{out}"], countries=["TR"], threat_types=["terrorism"]),
        make_sub("world", [f"jsonl://{out}"], include_non_threats=True),
        make_sub("sleepy", [f"jsonl://{out}"], quiet_hours=quiet),
    ):
        await store.put(sub)


def _batch() -> list[AlertClassified]:
    return [
        make_alert(alert_id="a1"),
        make_alert(alert_id="a2", locations=(SPB,), title="SPB", text="spb"),
        # the same content as a1 from another source: a duplicate for everyone who got a1
        make_alert(alert_id="a3-other-source"),
        make_alert(alert_id="a4", locations=(ISTANBUL,), title="Istanbul", text="istanbul"),
        # the same alert again (a producer retry): nothing twice
        make_alert(alert_id="a1"),
        make_alert(alert_id="a5", locations=(MOSCOW, SPB), title="Both", text="both", severity="Extreme"),
        # an update of a1 right behind it in the same batch: the original's recipients, marked update
        make_alert(alert_id="a1", revision=2, revision_of="a1", title="a1 updated", text="a1 v2",
                   locations=(MOSCOW, ISTANBUL)),
        make_alert(alert_id="a6", title="Weather", text="rain", threats=(), is_threat=False, severity="Minor"),
    ]


def _summary(results: list[HandleResult]) -> list[tuple[object, ...]]:
    out = []
    for r in results:
        out.append(
            (
                sorted((e.subscription_id, e.channel, e.kind, type(e).__name__) for e in r.events),
                sorted(r.duplicates),
                sorted(r.digested),
                sorted((s, c) for s, c, _ in r.deferred),
                sorted((s, why) for s, _, why in r.skipped),
                sorted(m.subscription.id for m in r.matches),
            )
        )
    return out


def _rows(path: Path) -> list[tuple[str, str, int, str]]:
    return sorted((r["subscription_id"], r["alert_id"], r["revision"], r["kind"]) for r in lines(path))


async def test_batch_equals_one_alert_after_the_other(redis, settings, tmp_path, capsys) -> None:
    s = settings.model_copy(update={"throttle_max": 2})
    late = Clock(NOW + timedelta(hours=9))  # 21:00 UTC = 06:00 in Tokyo: "sleepy" is in quiet hours
    one_by_one = tmp_path / "sequential.jsonl"
    await _subscriptions(redis, one_by_one)
    seq = notifier(redis, s, late)
    sequential = [await seq.process(a) for a in _batch()]
    await seq.aclose()
    await redis.flushdb()

    batched_out = tmp_path / "batched.jsonl"
    await _subscriptions(redis, batched_out)
    n = notifier(redis, s, late)
    batched = ok(await n.process_many(_batch()))
    await n.aclose()

    def norm(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return json.loads(json.dumps(rows).replace(str(batched_out), "OUT").replace(str(one_by_one), "OUT"))

    assert norm(_summary(batched)) == norm(_summary(sequential))
    assert _rows(batched_out) == _rows(one_by_one)
    # and what that is: a1 once per (subscription, channel); a3 a duplicate; the repeat of a1 skipped;
    # the update reached exactly a1's recipients; throttle_max=2 folded the third "world" alert
    rows = _rows(batched_out)
    assert [r for r in rows if r[1] == "a1"] == [
        ("moscow", "a1", 1, "new"), ("moscow", "a1", 2, "update"), ("ru", "a1", 1, "new"),
        ("ru", "a1", 2, "update"), ("world", "a1", 1, "new"), ("world", "a1", 2, "update"),
    ]  # fmt: skip
    assert batched[2].events == []
    assert {d[0] for d in batched[2].duplicates} == {"moscow", "ru", "sleepy", "world"}
    assert batched[4].events == []
    assert {why for _, _, why in batched[4].skipped} == {"skipped_sent"}
    assert ["world", "jsonl://OUT"] in norm(batched[3].digested)
    assert [d[0] for d in batched[0].deferred] == ["sleepy"]
    assert "sleepy" in {e.subscription_id for e in batched[5].events}  # Extreme breaks through
    keys = [e.idempotency_key for r in batched for e in r.events]
    assert len(keys) == len(set(keys))


async def test_two_replicas_with_the_same_batch_deliver_each_pair_once(
    redis, settings, receiver_factory, tmp_path
) -> None:
    rx = receiver_factory()
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    for i in range(4):
        await store.put(make_sub(f"sub-{i}", [f"jsonl://{out}", rx.webhook_url(f"/s{i}")]))
    a, b = notifier(redis, settings, owner="replica-a"), notifier(redis, settings, owner="replica-b")
    batch = [make_alert(alert_id=f"x{i}", text=f"text {i}") for i in range(3)]
    ra, rb = await asyncio.gather(a.process_many(batch), b.process_many(batch))
    delivered = [e for r in ok(ra) + ok(rb) for e in r.events if isinstance(e, NotificationDelivered)]
    assert len(delivered) == 3 * 4 * 2
    assert len({e.idempotency_key for e in delivered}) == 3 * 4 * 2
    assert len(lines(out)) == 12
    assert len(rx.received) == 12
    # a redelivered batch sends nothing more
    again = ok(await a.process_many(batch))
    assert [e for r in again for e in r.events] == []
    assert len(lines(out)) == 12
    assert len(rx.received) == 12
    await a.aclose()
    await b.aclose()


async def test_failing_and_hanging_channels_in_a_batch(redis, settings, receiver_factory, tmp_path) -> None:
    bad = receiver_factory(plan=lambda n: 500)
    hang = receiver_factory(hang=True)
    out = tmp_path / "ok.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("bad", [bad.webhook_url()]))
    await store.put(make_sub("slow", [hang.webhook_url()]))
    await store.put(make_sub("fast", [f"jsonl://{out}"]))
    quick = settings.model_copy(update={"send_timeout_s": 0.3, "max_attempts": 2})
    n = notifier(redis, quick)
    batch = [make_alert(alert_id=f"h{i}", text=f"text {i}") for i in range(3)]
    results = ok(await n.process_many(batch))
    assert len(lines(out)) == 3  # the JSONL channel is not held up by the others
    for r in results:
        by_sub: dict[str, list[tuple[str, int, bool]]] = {}
        for e in r.events:
            by_sub.setdefault(e.subscription_id, []).append(
                (type(e).__name__, e.attempt, isinstance(e, NotificationFailed) and e.permanent)
            )
        assert by_sub["fast"] == [("NotificationDelivered", 1, False)]
        assert by_sub["bad"] == [("NotificationFailed", 1, False), ("NotificationFailed", 2, True)]
        assert by_sub["slow"] == [("NotificationFailed", 1, False), ("NotificationFailed", 2, True)]
        assert sorted(d.fields["subscription_id"] for d in r.dead_letters) == ["bad", "slow"]
        assert all(json.loads(d.fields["event"])["alert"]["alert_id"] == r.outcomes[0].job.alert_id
                   for d in r.dead_letters)  # fmt: skip
        # the claims of the dead-lettered pairs were released: a replay can try again
        for d in r.dead_letters:
            assert await n.deliverer.ledger.state(d.fields["idempotency_key"]) is None
    await n.aclose()


async def test_failing_inline_channel_is_retried_with_its_attempts_counted(redis, settings, tmp_path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the channel wants a directory")
    out = tmp_path / "ok.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("broken", [f"jsonl://{blocked}/x.jsonl"]))
    await store.put(make_sub("fine", [f"jsonl://{out}"]))
    n = notifier(redis, settings.model_copy(update={"max_attempts": 3}))
    (r,) = ok(await n.process_many([make_alert()]))
    broken = [(e.attempt, e.permanent) for e in r.events if isinstance(e, NotificationFailed)]
    assert broken == [(1, False), (2, False), (3, True)]
    assert [e.subscription_id for e in r.events if isinstance(e, NotificationDelivered)] == ["fine"]
    assert len(lines(out)) == 1
    await n.aclose()


async def test_redis_failure_fails_every_alert_of_the_batch(redis, settings, tmp_path) -> None:
    from redis.asyncio import Redis

    from .helpers import free_port

    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    n = notifier(redis, settings)
    await n.store.index()  # loaded while Redis was up
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    n.redis = dead
    n.dedup.redis = dead
    n.dedup._script = dead.register_script(n.dedup._script.script)
    results = await n.process_many([make_alert(alert_id="r1"), make_alert(alert_id="r2", text="other")])
    assert all(isinstance(r, RedisConnectionError) for r in results)
    assert not out.exists()
    await dead.aclose()
    await n.aclose()


async def test_empty_batch_and_alerts_nobody_wants(redis, settings) -> None:
    n = notifier(redis, settings)
    assert await n.process_many([]) == []
    (r,) = ok(await n.process_many([make_alert()]))
    assert r.events == []
    assert r.matches == []
    await n.aclose()


async def test_quiet_hours_release_after_a_batch(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    quiet = {"start": "22:00", "end": "07:00", "tz": "Europe/Moscow"}
    await SubscriptionStore(redis).put(make_sub("sleeper", [f"jsonl://{out}"], quiet_hours=quiet))
    clock = Clock(datetime(2026, 11, 25, 21, 0, tzinfo=NOW.tzinfo))  # 00:00 in Moscow
    n = notifier(redis, settings, clock)
    results = ok(await n.process_many([make_alert(alert_id="n1"), make_alert(alert_id="n2", text="two")]))
    assert [r.deferred[0][0] for r in results] == ["sleeper", "sleeper"]
    assert not out.exists()
    clock.now = datetime(2026, 11, 26, 4, 0, tzinfo=NOW.tzinfo)  # 07:00 in Moscow
    released = await n.due_deferred()
    assert sorted(e.alert_id for e in released.events) == ["n1", "n2"]
    assert sorted(r["alert_id"] for r in lines(out)) == ["n1", "n2"]
    await n.aclose()


def test_content_fingerprint_normalises_like_the_regex() -> None:
    import hashlib

    from vigil_notify.delivery import _normalise_regex, content_fingerprint

    def reference(title: str, text: str) -> str:
        return hashlib.sha256(_normalise_regex(f"{title}\n{text}").encode()).hexdigest()[:24]

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    cases = [("", ""), ("Security Alert", "Threats to metro stations in Moscow.  Avoid\tcrowds!\n")]
    cases += [(chr(c), f"a{chr(c)}b {chr(c)}{chr(c)}Z") for c in range(128)]
    cases += [(" " * n + ".", f"a{' ' * n}b{'!?' * n}c {'.' * n}") for n in (1, 2, 3, 5, 17, 64, 1000)]
    cases += [("...", "!!!"), (" ", "\n\t"), ("a", " " * 9)]
    cases += [(every[i : i + 4000], every[i + 4000 : i + 9000]) for i in range(0, len(every), 9000)]
    cases += [("Kyiv: “strikes” on the city’s İstanbul-bound trains", "Straße ﬁx ǅ ΣΑΣ \u00a0\u2003 x_y")]
    for title, text in cases:
        assert content_fingerprint(title, text) == reference(title, text), (title[:20], text[:20])


async def test_cancelled_batch_keeps_what_was_sent_marked(redis, settings, receiver_factory, tmp_path) -> None:
    """Cancelled while a slow channel is in flight (a stop that outlasts the grace period): what the
    inline channels already wrote is marked "sent", so the redelivered batch does not write it again."""
    hang = receiver_factory(hang=True)
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("slow", [hang.webhook_url()]))
    await store.put(make_sub("fast", [f"jsonl://{out}"]))
    n = notifier(redis, settings.model_copy(update={"send_timeout_s": 30.0}))
    batch = [make_alert(alert_id="c1"), make_alert(alert_id="c2", text="two")]
    task = asyncio.create_task(n.process_many(batch))
    for _ in range(200):
        if len(lines(out)) == 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(lines(out)) == 2
    again = Notifier(redis, settings=settings.model_copy(update={"in_flight_wait_s": 0.1}), clock=Clock(),
                     sleep=no_sleep, owner="other-replica")  # fmt: skip
    got = await again.process_many(batch)
    # the slow webhook is still claimed by the cancelled owner: the alerts are not finished (their
    # entries stay pending), but what they did is reported
    assert all(isinstance(r, DeliveryStillInFlight) for r in got), got
    results = [r.result for r in got if isinstance(r, DeliveryStillInFlight)]
    assert len(lines(out)) == 2  # the JSONL lines were not written twice
    fast = [o.status for r in results for o in r.outcomes if o.job.subscription_id == "fast"]
    assert fast == ["skipped_sent", "skipped_sent"]
    await n.aclose()
    await again.aclose()


async def test_delivered_events_are_the_validated_events(redis, settings, tmp_path) -> None:
    """NotificationDelivered is built without validation: it equals (and dumps like) the validated one."""
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}", "console://"]))
    n = notifier(redis, settings)
    results = ok(await n.process_many([make_alert(alert_id="v1"), make_alert(alert_id="v2", text="b")]))
    events = [e for r in results for e in r.events]
    assert len(events) == 4
    for e in events:
        assert isinstance(e, NotificationDelivered)
        again = NotificationDelivered.model_validate(e.model_dump())
        assert again == e
        assert again.model_dump_json() == e.model_dump_json()
        assert e.model_fields_set == again.model_fields_set
        assert list(e.__dict__) == list(again.__dict__)  # the same field order too
    assert len({e.event_id for e in events}) == 4
    await n.aclose()


async def test_a_claim_left_by_a_dead_replica_is_retried_not_lost(redis, settings, tmp_path) -> None:
    """A replica died after claiming a delivery and before sending it. The next replica must not
    acknowledge the alert as done: it gets DeliveryStillInFlight (entry stays pending), and once the
    dead owner's claim expires, the redelivered alert is sent exactly once."""
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    alert = make_alert(alert_id="orphan")
    fast = settings.model_copy(update={"in_flight_wait_s": 0.1, "claim_ttl_s": 1})
    dead = notifier(redis, fast, owner="dead-replica")
    a = alert.alert
    job_key = idempotency_key(a.alert_id, a.revision, "desk", f"jsonl://{out}")
    assert await dead.deliverer.ledger.claim(job_key) == "claimed"  # ...and then the process died
    survivor = notifier(redis, fast, owner="survivor")
    (first,) = await survivor.process_many([alert])
    assert isinstance(first, DeliveryStillInFlight), first
    assert "retried" in str(first)
    assert lines(out) == []
    await asyncio.sleep(1.2)  # the dead owner's claim expires (claim_ttl_s)
    (second,) = ok(await survivor.process_many([alert]))
    assert [o.status for o in second.outcomes] == ["delivered"]
    assert len(lines(out)) == 1
    (third,) = ok(await survivor.process_many([alert]))  # a later redelivery sends nothing again
    assert [o.status for o in third.outcomes] == ["skipped_sent"]
    assert len(lines(out)) == 1
    await dead.aclose()
    await survivor.aclose()


async def test_own_claim_left_by_a_failed_attempt_is_taken_again_at_once(redis, settings, tmp_path) -> None:
    """An attempt of this replica claimed a delivery and failed before sending (e.g. Redis dropped the
    connection): the retry by the same replica takes its own orphaned claim at once (no waiting for
    in_flight_wait_s or the claim's TTL) and sends exactly once."""
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    alert = make_alert(alert_id="retry-own")
    n = notifier(redis, settings.model_copy(update={"in_flight_wait_s": 5.0}), owner="replica-a")
    a = alert.alert
    job_key = idempotency_key(a.alert_id, a.revision, "desk", f"jsonl://{out}")
    assert await n.deliverer.ledger.claim(job_key) == "claimed"  # the failed attempt's claim
    started = asyncio.get_running_loop().time()
    (result,) = ok(await n.process_many([alert]))
    assert asyncio.get_running_loop().time() - started < 2.0  # not waited out
    assert [o.status for o in result.outcomes] == ["delivered"]
    assert len(lines(out)) == 1
    (again,) = ok(await n.process_many([alert]))
    assert [o.status for o in again.outcomes] == ["skipped_sent"]
    assert len(lines(out)) == 1
    await n.aclose()
