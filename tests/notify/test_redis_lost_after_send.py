"""Redis killed between a batch's sends and its "sent" marks (the Redis-restart chaos flake).

A private ``redis-server`` per test with AOF (``appendfsync always``), SIGKILLed from inside the
channel's send (after the message went out, before notify writes the marks), then restarted on the
same port and directory. The notify process itself never dies: it knows what it sent, so the
redelivered alerts must not reach the channel again, and the marks (and recipient records) must be
in Redis before anything else of theirs is sent. The client is the services' own
(``vigil_shared.runtime.redis_client``: no command retries, a command in flight at the kill fails).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from vigil_notify.channels.base import Message
from vigil_notify.channels.jsonl import JsonlChannel
from vigil_notify.channels.registry import ChannelRegistry, default_registry
from vigil_notify.delivery import Deliverer, DeliveryJob, RecipientLog, idempotency_key
from vigil_notify.notifier import HandleResult, Notifier
from vigil_notify.settings import NotifySettings
from vigil_notify.subscriptions import SubscriptionStore
from vigil_shared.embedded_redis import EmbeddedRedis
from vigil_shared.events import AlertClassified, NotificationDelivered
from vigil_shared.runtime import redis_client

from .helpers import make_alert, make_sub
from .test_notifier import Clock, no_sleep


@dataclass
class Server:
    redis: EmbeddedRedis
    kills: int = 0

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what the AOF (fsync always) holds is what comes back."""
        proc = self.redis.process
        assert proc is not None
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        self.redis.process = None
        self.kills += 1

    def restart(self) -> None:
        self.redis.start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    srv = EmbeddedRedis(appendonly=True, workdir=workdir).start()
    try:
        yield Server(srv)
    finally:
        srv.cleanup()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Redis]:
    r = redis_client(server.redis.url)
    yield r
    await r.aclose()


class KillingJsonl(JsonlChannel):
    """The real JSONL channel; while armed, Redis is SIGKILLed right after the lines are written
    (the peer accepted the messages; notify has not recorded them yet)."""

    armed: Callable[[], bool] = staticmethod(lambda: False)
    kill: Callable[[], None] = staticmethod(lambda: None)

    def send_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        out = super().send_many(messages)
        if self.armed():
            self.kill()
        return out

    async def send(self, message: Message) -> None:
        await super().send(message)
        if self.armed():
            self.kill()


def registry_killing_after_jsonl(server: Server, armed: Callable[[], bool]) -> ChannelRegistry:
    reg = ChannelRegistry()

    def factory(url: str, **_: object) -> KillingJsonl:
        ch = KillingJsonl(url)
        ch.armed = armed
        ch.kill = server.kill
        return ch

    reg.register(factory, ("jsonl",))
    return reg


def notifier(client: Redis, settings: NotifySettings, registry: ChannelRegistry | None = None) -> Notifier:
    return Notifier(client, settings=settings, clock=Clock(), sleep=no_sleep, owner="notify-1", registry=registry)


def jsonl_counts(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["alert_id"] for line in path.read_text().splitlines())


def batch(n: int) -> list[AlertClassified]:
    return [make_alert(alert_id=f"k{i}", title=f"alert {i}", text=f"threat number {i} in Moscow") for i in range(n)]


def keys_of(alerts: list[AlertClassified], sub_id: str, url: str) -> list[str]:
    return [idempotency_key(a.alert.alert_id, a.alert.revision, sub_id, url) for a in alerts]


async def states(n: Notifier, keys: list[str]) -> list[str | None]:
    return [await n.deliverer.ledger.state(k) for k in keys]


def results_ok(results: list[HandleResult | BaseException]) -> list[HandleResult]:
    for r in results:
        assert isinstance(r, HandleResult), repr(r)
    return results  # type: ignore[return-value]


async def test_sends_whose_marks_died_with_redis_are_not_sent_again(
    server: Server, client: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    url = f"jsonl://{out}"
    await SubscriptionStore(client).put(make_sub("desk", [url], include_non_threats=True))
    armed = [True]
    n = notifier(client, settings, registry_killing_after_jsonl(server, lambda: armed[0]))
    alerts = batch(5)
    keys = keys_of(alerts, "desk", url)

    first = await n.process_many(alerts)  # Redis dies after the lines are written
    armed[0] = False
    assert server.kills == 1
    assert all(isinstance(r, BaseException) for r in first), first  # the batch failed: entries stay pending
    assert jsonl_counts(out) == Counter({a.alert.alert_id: 1 for a in alerts})

    # while Redis is still down, the redelivery fails before sending anything
    again_down = await n.process_many(alerts)
    assert all(isinstance(r, BaseException) for r in again_down)
    assert jsonl_counts(out) == Counter({a.alert.alert_id: 1 for a in alerts})

    server.restart()
    # the claims came back from the AOF as this replica's own, the marks never reached Redis:
    # the window the test is about
    assert await states(n, keys) == ["sending:notify-1"] * len(keys)

    second = results_ok(await n.process_many(alerts))  # the redelivered batch
    assert jsonl_counts(out) == Counter({a.alert.alert_id: 1 for a in alerts}), "sent twice"
    assert await states(n, keys) == ["sent"] * len(keys)
    # the deliveries made before the crash are reported now (their events were never published)
    assert [[o.status for o in r.outcomes] for r in second] == [["delivered"]] * len(alerts)
    events = [e for r in second for e in r.events]
    assert all(isinstance(e, NotificationDelivered) and e.attempt == 1 for e in events)
    assert sorted(e.idempotency_key for e in events) == sorted(keys)
    # the recipient records went with the marks (updates and cancels find who got the original)
    got = await RecipientLog(client, settings).recipients(("k0",))
    assert [sub for sub, _ in got] == ["desk"]

    third = results_ok(await n.process_many(alerts))  # a later redelivery: nothing sent, nothing reported
    assert [[o.status for o in r.outcomes] for r in third] == [["skipped_sent"]] * len(alerts)
    assert jsonl_counts(out) == Counter({a.alert.alert_id: 1 for a in alerts})
    await n.aclose()


async def test_marks_kept_in_the_process_are_written_before_any_other_batch(
    server: Server, client: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    """The marks are written as soon as Redis answers again, by whatever comes first (here a batch
    of other alerts), so another replica that gets the entries finds them sent."""
    out = tmp_path / "out.jsonl"
    url = f"jsonl://{out}"
    await SubscriptionStore(client).put(make_sub("desk", [url], include_non_threats=True))
    armed = [True]
    n = notifier(client, settings, registry_killing_after_jsonl(server, lambda: armed[0]))
    alerts = batch(4)
    assert all(isinstance(r, BaseException) for r in await n.process_many(alerts[:2]))
    armed[0] = False
    server.restart()
    results_ok(await n.process_many(alerts[2:]))  # other alerts: the kept marks go first
    assert await states(n, keys_of(alerts, "desk", url)) == ["sent"] * 4
    # another replica gets the first two entries: already sent, skipped at once
    other = Notifier(client, settings=settings, clock=Clock(), sleep=no_sleep, owner="notify-2")
    skipped = results_ok(await other.process_many(alerts[:2]))
    assert [[o.status for o in r.outcomes] for r in skipped] == [["skipped_sent"]] * 2
    assert jsonl_counts(out) == Counter({a.alert.alert_id: 1 for a in alerts})
    await other.aclose()
    await n.aclose()


async def test_webhook_sent_before_redis_died_is_not_sent_again(
    server: Server, client: Redis, settings: NotifySettings, receiver_factory: Any
) -> None:
    """The awaited channels (a task per delivery, retries): the receiver accepts the message, Redis
    is killed before notify records it; the redelivery does not post it again."""

    def plan(k: int) -> int:
        if k == 1:
            server.kill()  # the request arrived; the 200 goes out after Redis is gone
        return 200

    rx = receiver_factory(plan=plan)
    hook = rx.webhook_url()
    await SubscriptionStore(client).put(make_sub("hook", [hook], include_non_threats=True))
    n = notifier(client, settings)
    alerts = batch(1)
    first = await n.process_many(alerts)
    assert isinstance(first[0], BaseException), first
    assert len(rx.received) == 1
    server.restart()
    assert await states(n, keys_of(alerts, "hook", hook)) == ["sending:notify-1"]
    (second,) = results_ok(await n.process_many(alerts))
    assert [o.status for o in second.outcomes] == ["delivered"]
    assert len(rx.received) == 1, "posted twice"
    assert await states(n, keys_of(alerts, "hook", hook)) == ["sent"]
    await n.aclose()


async def _orphaned_claims(
    redis: Redis, settings: NotifySettings, tmp_path: Path
) -> tuple[Notifier, list[AlertClassified], str, Path]:
    """A notifier, 3 alerts for one JSONL subscriber, and their deliveries' keys claimed in this
    notifier's name by an attempt that failed before sending: (notifier, alerts, channel URL, file)."""
    out = tmp_path / "out.jsonl"
    url = f"jsonl://{out}"
    await SubscriptionStore(redis).put(make_sub("desk", [url], include_non_threats=True))
    n = notifier(redis, settings.model_copy(update={"in_flight_wait_s": 5.0}))
    alerts = batch(3)
    for k in keys_of(alerts, "desk", url):
        assert await n.deliverer.ledger.claim(k) == "claimed"  # the failed attempt's claims
    return n, alerts, url, out


async def test_two_batches_meeting_the_same_own_orphan_claim_send_it_once(
    redis: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    """An attempt of this replica claimed the keys and failed before sending; two batches of the same
    process (two consumers, or a claim pass next to a read) then meet the entries at once. Only one
    of them may take the orphaned claims back and send; the other waits and finds them sent."""
    n, alerts, _url, out = await _orphaned_claims(redis, settings, tmp_path)
    a, b = await asyncio.gather(n.process_many(alerts), n.process_many(alerts))
    assert jsonl_counts(out) == Counter({x.alert.alert_id: 1 for x in alerts}), "sent twice"
    statuses = sorted(o.status for r in results_ok(a) + results_ok(b) for o in r.outcomes)
    assert statuses == ["delivered"] * 3 + ["skipped_sent"] * 3
    assert n.deliverer._sending == set()
    await n.aclose()


async def test_a_batch_whose_claim_states_went_stale_does_not_send_again(
    redis: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    """The same meeting with the worst timing (seen once under load): the second batch reads the
    claims (this owner's orphans) before the first has sent, and looks at them only after the first
    batch sent, marked and let go of them. Its states are stale: the keys are no longer this owner's
    claims, so it must not take them as orphans and send again (the claim's renewal says so)."""
    n, alerts, url, out = await _orphaned_claims(redis, settings, tmp_path)
    ledger = n.deliverer.ledger
    real_claim_many = ledger.claim_many
    first_done = asyncio.Event()
    in_first = contextvars.ContextVar("in_first", default=False)  # inherited by the call's own tasks
    late: list[list[str]] = []

    async def claim_many_second_late(keys: list[str]) -> list[str]:
        states = await real_claim_many(keys)  # read now, from the real Redis
        if not in_first.get():
            late.append(states)
            await first_done.wait()  # ... and looked at only after the first batch is over
        return states

    ledger.claim_many = claim_many_second_late  # type: ignore[method-assign]

    async def first() -> list[HandleResult | BaseException]:
        in_first.set(True)
        try:
            return await n.process_many(alerts)
        finally:
            first_done.set()

    a, b = await asyncio.gather(first(), n.process_many(alerts))
    assert late == [[ledger.token] * 3], "the second batch read the orphaned claims before the first sent"
    assert jsonl_counts(out) == Counter({x.alert.alert_id: 1 for x in alerts}), "sent twice"
    statuses = sorted(o.status for r in results_ok(a) + results_ok(b) for o in r.outcomes)
    assert statuses == ["delivered"] * 3 + ["skipped_sent"] * 3
    assert await states(n, keys_of(alerts, "desk", url)) == ["sent"] * 3
    assert n.deliverer._sending == set()
    await n.aclose()


async def test_a_delivery_waiting_on_a_send_whose_mark_failed_does_not_send_it(
    redis: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    """A delivery of the same key waits on this process's own send in progress (the key is
    ``sending`` in its name and being sent); that send's mark then fails. The waiter must neither
    take the claim as an orphan and send again, nor wait ``in_flight_wait_s`` out: it writes the
    mark and reports the delivery."""
    out = tmp_path / "out.jsonl"
    url = f"jsonl://{out}"
    d = Deliverer(redis, default_registry(), settings.model_copy(update={"in_flight_wait_s": 5.0}), owner="r")
    alert = batch(1)[0]
    job = _plain_job(alert, "desk", url)
    assert await d.ledger.claim(job.idempotency_key) == "claimed"
    d._sending.add(job.idempotency_key)  # the other call's send in progress
    started = asyncio.get_running_loop().time()
    waiter = asyncio.create_task(d.deliver(job))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    d._sending.discard(job.idempotency_key)  # ...which sent, and then failed to write its mark
    d._remember_sent([job], 1)
    outcome = await waiter
    assert asyncio.get_running_loop().time() - started < 2.0
    assert outcome.status == "delivered"
    assert jsonl_counts(out) == Counter(), "sent again"
    assert await d.ledger.state(job.idempotency_key) == "sent"
    assert d._sent_here == {}
    assert d._unmarked == {}
    await d.aclose()


def _plain_job(alert: AlertClassified, sub_id: str, url: str) -> DeliveryJob:
    a = alert.alert
    idem = idempotency_key(a.alert_id, a.revision, sub_id, url)
    message = Message("title", "text", "markdown", "html", {"alert_id": a.alert_id}, idem)
    return DeliveryJob(a.alert_id, a.revision, alert.correlation_id, sub_id, url, "new", "reason", idem, message,
                       (a.alert_id,))  # fmt: skip


async def test_a_kept_mark_redis_refuses_holds_up_its_own_alert_only(
    redis: Redis, settings: NotifySettings, tmp_path: Path
) -> None:
    """A kept mark whose write fails for a reason other than an outage (here the alert's recipients
    key holds a string: WRONGTYPE) must not stop the other alerts; the alert itself is neither sent
    again nor reported until its mark is written."""
    out = tmp_path / "out.jsonl"
    url = f"jsonl://{out}"
    await SubscriptionStore(redis).put(make_sub("desk", [url], include_non_threats=True))
    n = notifier(redis, settings)
    kept, other = batch(2)
    job = _plain_job(kept, "desk", url)
    assert await n.deliverer.ledger.claim(job.idempotency_key) == "claimed"
    n.deliverer._remember_sent([job], 1)  # what a failed batch leaves after sending the alert
    bad = RecipientLog.redis_key(kept.alert.alert_id)
    await redis.set(bad, "not a hash")
    (got,) = results_ok(await n.process_many([other]))  # not held up
    assert [o.status for o in got.outcomes] == ["delivered"]
    (failed,) = await n.process_many([kept])
    assert isinstance(failed, BaseException)
    assert "WRONGTYPE" in str(failed)
    assert jsonl_counts(out) == Counter({"k1": 1})  # the kept alert is not sent again
    await redis.delete(bad)
    (done,) = results_ok(await n.process_many([kept]))
    assert [o.status for o in done.outcomes] == ["delivered"]
    assert jsonl_counts(out) == Counter({"k1": 1})
    assert await n.deliverer.ledger.state(job.idempotency_key) == "sent"
    await n.aclose()
