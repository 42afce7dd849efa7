"""The notify pipeline behind one call: ``await Notifier(redis).handle(alert)``.

Steps, Alertmanager-like: **route** (new alert: :func:`~vigil_notify.matching.match` against the
current subscription index; update/cancel: exactly the (subscription, channel) pairs that received
the original, from the :class:`~vigil_notify.delivery.RecipientLog`) -> **dedup** (same content from
another source already reached this subscriber) -> **quiet hours** (defer unless Extreme) ->
**throttle** (over the limit: fold into a digest; Extreme, updates and cancels pass) -> **render** ->
**deliver** (idempotent, retried, concurrent).

The caller publishes what comes back: :meth:`Notifier.handle` returns every
``NotificationDelivered``/``NotificationFailed``; :meth:`Notifier.process` also returns the
``DeadLetter`` events and what was deferred, folded or skipped. :meth:`flush_digests` and
:meth:`due_deferred` are for a periodic task in the service wiring (every few seconds is fine;
several replicas may run them at once — idempotency keys keep each message single).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from vigil_shared import streams
from vigil_shared.events import AlertClassified, DeadLetter, DeliveryKind, NotificationDelivered, utcnow
from vigil_shared.worker import Publication

from vigil_notify.channels.registry import ChannelRegistry, default_registry
from vigil_notify.delivered import new_object
from vigil_notify.delivery import (
    Deduplicator,
    DeferredQueue,
    Deliverer,
    DeliveryJob,
    DeliveryOutcome,
    DigestStore,
    Notification,
    RecipientLog,
    Throttle,
    channel_hash,
    content_fingerprint,
    idempotency_key,
)
from vigil_notify.matching import Match, match
from vigil_notify.rendering import DigestItem, PreparedMessage, Renderer, sent_at_now
from vigil_notify.settings import NotifySettings
from vigil_notify.subscriptions import QuietHours, Subscription, SubscriptionStore, mask_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


def revision_kind(alert: AlertClassified) -> DeliveryKind:
    """``cancel``/``update`` for a later revision or a CAP Update/Cancel, else ``new``."""
    a = alert.alert
    cap_type = a.cap.msg_type if a.cap else None
    if cap_type == "Cancel":
        return "cancel"
    if a.revision > 1 or a.revision_of or (cap_type == "Update" and a.cap and a.cap.references):
        return "update"
    return "new"


def own_keys(alert: AlertClassified) -> tuple[str, ...]:
    """Recipient-log keys this alert is known under (its id and its CAP sender+identifier)."""
    a = alert.alert
    keys = [a.alert_id]
    if a.cap:
        keys.append(f"cap:{a.cap.sender},{a.cap.identifier}")
    return tuple(keys)


def original_keys(alert: AlertClassified) -> tuple[str, ...]:
    """Recipient-log keys of the alert(s) this update/cancel refers to."""
    a = alert.alert
    keys: list[str] = []
    if a.revision_of:
        keys.append(a.revision_of)
    elif a.revision > 1:
        keys.append(a.alert_id)
    if a.cap:
        for ref in a.cap.references:
            parts = ref.split(",")
            if len(parts) >= 2:
                keys.append(f"cap:{parts[0].strip()},{parts[1].strip()}")
    return tuple(dict.fromkeys(keys))


def idempotency_head(alert_id: str, revision: int) -> str:
    """What :func:`_idempotency_key` needs of an alert (the same for each of its deliveries)."""
    return f"{alert_id}\x1f{revision}\x1f"


_sha256: Final = hashlib.sha256
"""``hashlib.sha256`` (a C static when compiled: no module attribute lookup per delivery)."""


def _idempotency_key(head: str, subscription_id: str, channel_url: str) -> str:
    """:func:`~vigil_notify.delivery.idempotency_key` (the same key) of the alert whose
    :func:`idempotency_head` is ``head``, computed without an interpreted call."""
    return _sha256(f"{head}{subscription_id}\x1f{channel_url}".encode()).hexdigest()[:32]


class Target:
    """One (subscription, channel) an alert goes to, as what kind of message and why.

    A plain class with its own ``__init__`` (positional, in this order): compiled, a dataclass's
    generated ``__init__`` would stay interpreted, once per delivery."""

    __slots__ = ("channel_url", "kind", "quiet_hours", "reason", "subscription", "subscription_id", "subscription_name")

    subscription: Subscription
    channel_url: str
    kind: DeliveryKind
    reason: str
    subscription_id: str
    subscription_name: str
    quiet_hours: QuietHours | None
    """The subscription's id, name and quiet hours (read once: a pydantic model's attributes are slow)."""

    def __init__(
        self,
        subscription: Subscription,
        channel_url: str,
        kind: DeliveryKind,
        reason: str,
        subscription_id: str,
        subscription_name: str,
        quiet_hours: QuietHours | None,
    ) -> None:
        self.subscription, self.channel_url, self.kind, self.reason = subscription, channel_url, kind, reason
        self.subscription_id, self.subscription_name, self.quiet_hours = subscription_id, subscription_name, quiet_hours

    @classmethod
    def of(cls, sub: Subscription, channel_url: str, kind: DeliveryKind, reason: str) -> Target:
        return cls(sub, channel_url, kind, reason, sub.id, sub.name, sub.filter.quiet_hours)

    def __repr__(self) -> str:
        return (
            f"Target(subscription_id={self.subscription_id!r}, channel_url={mask_url(self.channel_url)!r}, "
            f"kind={self.kind!r}, reason={self.reason!r})"
        )


class HandleResult:
    """What one alert's routing and delivery did (every argument optional, by keyword; a plain class
    with its own ``__init__``: compiled, a dataclass's generated one would stay interpreted)."""

    __slots__ = (
        "dead_letters", "deferred", "digested", "duplicates", "encoded", "events", "matches", "outcomes", "skipped",
    )  # fmt: skip

    events: list[Notification]
    dead_letters: list[DeadLetter]
    matches: list[Match]
    deferred: list[tuple[str, str, datetime]]
    """(subscription_id, masked channel, due time)."""
    digested: list[tuple[str, str]]
    duplicates: list[tuple[str, str]]
    """(subscription_id, alert_id that already carried the same content)."""
    skipped: list[tuple[str, str, str]]
    """(subscription_id, masked channel, why) — already sent / in flight elsewhere."""
    outcomes: list[DeliveryOutcome]
    encoded: dict[int, tuple[Notification, bytes]]
    """By ``id`` of an event in ``events``: the event and its stream entry's ``__data__`` when notify
    encoded it (see :meth:`data_of`)."""

    def __init__(
        self,
        *,
        events: list[Notification] | None = None,
        dead_letters: list[DeadLetter] | None = None,
        matches: list[Match] | None = None,
        deferred: list[tuple[str, str, datetime]] | None = None,
        digested: list[tuple[str, str]] | None = None,
        duplicates: list[tuple[str, str]] | None = None,
        skipped: list[tuple[str, str, str]] | None = None,
        outcomes: list[DeliveryOutcome] | None = None,
        encoded: dict[int, tuple[Notification, bytes]] | None = None,
    ) -> None:
        self.events = [] if events is None else events
        self.dead_letters = [] if dead_letters is None else dead_letters
        self.matches = [] if matches is None else matches
        self.deferred = [] if deferred is None else deferred
        self.digested = [] if digested is None else digested
        self.duplicates = [] if duplicates is None else duplicates
        self.skipped = [] if skipped is None else skipped
        self.outcomes = [] if outcomes is None else outcomes
        self.encoded = {} if encoded is None else encoded

    def __repr__(self) -> str:
        return (
            f"HandleResult(events={len(self.events)}, dead_letters={len(self.dead_letters)}, "
            f"matches={len(self.matches)}, deferred={len(self.deferred)}, digested={len(self.digested)}, "
            f"duplicates={len(self.duplicates)}, skipped={self.skipped!r})"
        )

    def absorb(self, outcomes: list[DeliveryOutcome]) -> bool:
        """Take in delivery outcomes; True when one of them is ``skipped_in_flight``."""
        in_flight = False
        self.outcomes.extend(outcomes)
        events, encoded = self.events, self.encoded
        for o in outcomes:
            got = o.events
            events.extend(got)
            data = o.data
            if data is not None:
                last = got[-1]
                encoded[id(last)] = (last, data)
            if o.dead_letter is not None:
                self.dead_letters.append(o.dead_letter)
            status = o.status
            if status.startswith("skipped"):
                self.skipped.append((o.job.subscription_id, mask_url(o.job.channel_url), status))
                in_flight = in_flight or status == "skipped_in_flight"
        return in_flight

    def data_of(self, event: Notification) -> bytes | None:
        """The ``__data__`` of ``event``'s stream entry if notify encoded it (for
        ``Publication(data=...)``), else None (the stream worker encodes the event)."""
        got = self.encoded.get(id(event))
        return got[1] if got is not None and got[0] is event else None


_PUBLICATION_SLOTS: Final = ("stream", "event", "data")
_FAST_PUBLICATION: Final = getattr(Publication, "__slots__", None) == _PUBLICATION_SLOTS and all(
    f.name == n for f, n in zip(dataclasses.fields(Publication), _PUBLICATION_SLOTS, strict=True)
)


def _publication(stream: str, event: Notification, data: bytes | None) -> Publication:
    """``Publication(stream, event, data)``: the same three slots set as the frozen dataclass's own
    ``__init__`` sets them (``object.__setattr__``), without the call of that (interpreted)
    ``__init__`` (~4,000 instructions a publication from compiled code, once per delivery; tested
    equal). Compiled, ``object.__setattr__`` in a function is ``PyObject_GenericSetAttr`` itself
    (mypyc's own translation), cheaper than calling each slot descriptor's ``__set__`` (~300
    instructions less a slot). ``Publication`` is taken as is when its slots are not the three
    fields in order."""
    if not _FAST_PUBLICATION:
        return Publication(stream, event, data)
    pub: Publication = new_object(Publication)
    object.__setattr__(pub, "stream", stream)
    object.__setattr__(pub, "event", event)
    object.__setattr__(pub, "data", data)
    return pub


def publications(result: HandleResult, tally: Counter[tuple[str, str]]) -> list[Publication]:
    """The events to publish for one alert (its notifications, with their stream entry's
    ``__data__`` when notify encoded it, then its dead letters); each notification's outcome is
    counted into ``tally`` by (channel, ``delivered``/``failed_permanent``/``failed_retrying``)."""
    pubs: list[Publication] = []
    encoded, notifications = result.encoded, streams.NOTIFICATIONS
    # counted here first, then into the tally once per key (in the order of their first event): a
    # Counter's item assignment goes through its Python-level __setitem__ slot (Counter defines
    # __delitem__), ~1,200 instructions each. A delivered event is counted under its channel alone
    # (a string: its hash is cached, no tuple made and hashed per event), a failed one under
    # (channel, outcome); the tally's keys are (channel, outcome) for both.
    seen: dict[Any, int] = {}
    for e in result.events:  # one pass: the count and the publication of each event
        key: Any
        if isinstance(e, NotificationDelivered):
            key = e.channel
        else:
            key = (e.channel, "failed_permanent" if e.permanent else "failed_retrying")
        seen[key] = seen.get(key, 0) + 1
        got = encoded.get(id(e))  # result.data_of(e), inline
        pubs.append(_publication(notifications, e, got[1] if got is not None and got[0] is e else None))
    for key, n in seen.items():
        counted: tuple[str, str] = key if type(key) is tuple else (key, "delivered")
        tally[counted] = tally.get(counted, 0) + n
    if result.dead_letters:
        deadletter = streams.DEADLETTER
        pubs.extend([Publication(deadletter, d) for d in result.dead_letters])
    return pubs


class BatchSummary:
    """What one read batch did, for its one INFO line (the service's ``batch routed``): alerts in,
    those that reached at least one subscription, and the fate of their deliveries."""

    __slots__ = ("alerts", "deferred", "digested", "duplicates", "errors", "routed", "skipped")

    alerts: int
    routed: int
    deferred: int
    digested: int
    duplicates: int
    skipped: int
    errors: int
    """Alerts that failed as a whole (left pending and retried, or dead-lettered by the worker)."""

    def __init__(
        self,
        alerts: int,
        routed: int = 0,
        deferred: int = 0,
        digested: int = 0,
        duplicates: int = 0,
        skipped: int = 0,
        errors: int = 0,
    ) -> None:
        self.alerts, self.routed, self.deferred, self.digested = alerts, routed, deferred, digested
        self.duplicates, self.skipped, self.errors = duplicates, skipped, errors

    def add(self, result: HandleResult) -> None:
        if result.matches or result.events:
            self.routed += 1
        self.deferred += len(result.deferred)
        self.digested += len(result.digested)
        self.duplicates += len(result.duplicates)
        self.skipped += len(result.skipped)

    def __repr__(self) -> str:
        return (
            f"BatchSummary(alerts={self.alerts}, routed={self.routed}, deferred={self.deferred}, "
            f"digested={self.digested}, duplicates={self.duplicates}, skipped={self.skipped}, errors={self.errors})"
        )


class DeliveryStillInFlight(Exception):
    """Some delivery of an alert is still claimed by another owner after ``in_flight_wait_s``.

    The alert's entry must not be acknowledged: the owner may have died between its claim and its
    send, and acknowledging would lose that delivery for good. The caller publishes what the other
    deliveries produced (``result``) and leaves the entry pending; the claim loop redelivers it, and
    once the other owner's claim is marked sent (skipped then) or has expired (``claim_ttl_s``, sent
    then), the entry completes. Past ``max_deliveries`` it is dead-lettered with this message."""

    def __init__(self, result: HandleResult) -> None:
        held = [(sub, channel) for sub, channel, why in result.skipped if why == "skipped_in_flight"]
        super().__init__(
            f"{len(held)} delivery(ies) still claimed by another notify replica ({held[:3]}); the entry stays "
            "pending and is retried after that claim is marked sent or expires (VIGIL_NOTIFY_CLAIM_TTL_S)"
        )
        self.result = result


class _AlertShared:
    """What every delivery of one alert shares, computed on first use: the rendering per kind and
    the dead-letter copy of the event."""

    __slots__ = (
        "_alert", "_dl", "_own", "_prepared", "_renderer", "_sent_at", "alert_id", "correlation_id", "revision",
    )  # fmt: skip

    def __init__(self, alert: AlertClassified, renderer: Renderer, sent_at: str | None = None) -> None:
        self._alert, self._renderer, self._sent_at = alert, renderer, sent_at
        self._prepared: dict[str, PreparedMessage] = {}
        self._dl: str | None = None
        self._own: tuple[str, ...] | None = None
        # what every job of the alert copies (read once: a pydantic model's attributes are slow)
        a = alert.alert
        self.alert_id, self.revision, self.correlation_id = a.alert_id, a.revision, alert.correlation_id

    def own_keys(self) -> tuple[str, ...]:
        if self._own is None:
            self._own = own_keys(self._alert)
        return self._own

    def alert_json(self) -> str:
        if self._dl is None:
            self._dl = self._alert.model_dump_json()
        return self._dl

    def prepared(self, kind: DeliveryKind) -> PreparedMessage:
        p = self._prepared.get(kind)
        if p is None:
            p = self._prepared[kind] = self._renderer.prepare(self._alert, kind=kind, sent_at=self._sent_at)
        return p

    def dead_letter_fields(self) -> dict[str, str]:
        return {"event": self.alert_json()}


class Notifier:
    """Facade the FastStream handler calls. One per process; safe to run in several replicas."""

    def __init__(
        self,
        redis: Redis,
        *,
        settings: NotifySettings | None = None,
        store: SubscriptionStore | None = None,
        registry: ChannelRegistry | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        owner: str | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings or NotifySettings()
        self.store = store or SubscriptionStore(
            redis,
            refresh_interval_s=self.settings.subscriptions_refresh_s,
            freeze_gc=self.settings.gc_freeze,
            gen1_per_full_collection=self.settings.gc_gen1_per_full_collection,
            young_threshold=self.settings.gc_young_threshold,
        )
        self.registry = registry or default_registry()
        self.renderer = renderer or Renderer()
        self.clock = clock
        self.recipients = RecipientLog(redis, self.settings)
        self.deliverer = Deliverer(
            redis, self.registry, self.settings, recipients=self.recipients, sleep=sleep, rng=rng, owner=owner
        )
        self.dedup = Deduplicator(redis, self.settings)
        self.throttle = Throttle(redis, self.settings)
        self.digests = DigestStore(redis, self.settings)
        self.deferred = DeferredQueue(redis, self.settings)

    async def aclose(self) -> None:
        await self.deliverer.aclose()

    # ------------------------------------------------------------------ entry points

    async def handle(self, alert: AlertClassified) -> list[Notification]:
        """Route and deliver one classified alert; returns every attempt's event to publish."""
        return (await self.process(alert)).events

    async def preview(self, alert: AlertClassified) -> list[Match]:
        """Who would get this alert now (no side effects)."""
        return match(alert, await self.store.index(), self.clock())

    async def process(self, alert: AlertClassified, *, entry_id: str = "") -> HandleResult:
        """:meth:`process_many` of one alert (raises what it would return for it)."""
        (result,) = await self.process_many([alert], entry_ids=[entry_id])
        if isinstance(result, BaseException):
            raise result
        return result

    async def process_many(
        self, alerts: Sequence[AlertClassified], *, entry_ids: Sequence[str] | None = None
    ) -> list[HandleResult | BaseException]:
        """Route and deliver a read batch of classified alerts at once; one result per alert, in
        order: its :class:`HandleResult`, or the exception that stopped it (the caller retries it).

        The same steps and effects as :meth:`process` one alert after the other, with the Redis
        work of the whole batch in a few calls: one content-dedup script for every (alert, matched
        subscription), one throttle script for every check, one pipeline for the quiet-hour
        deferrals and digests, then :meth:`Deliverer.run_batch` (one claim script, inline sends,
        one "sent" script). Each script applies its items in stream order, exactly as the calls
        one by one would. New alerts go first, then updates and cancellations (which read the
        recipient records the new ones write, so an update right behind its original in the same
        batch reaches the original's recipients)."""
        if not alerts:
            return []
        ids = list(entry_ids) if entry_ids is not None else [""] * len(alerts)
        out: list[HandleResult | BaseException] = [HandleResult() for _ in alerts]
        groups: dict[bool, list[int]] = {True: [], False: []}
        kinds: list[DeliveryKind] = []
        for i, alert in enumerate(alerts):
            try:
                kind = revision_kind(alert)
            except Exception as exc:
                out[i] = exc
                kind = "new"
            else:
                groups[kind == "new"].append(i)
            kinds.append(kind)
        for new in (True, False):
            idx = groups[new]
            if not idx:
                continue
            try:
                await self._process_group(alerts, ids, kinds, idx, out, new=new)
            except Exception as exc:  # Redis failed: every alert of the group is retried
                for i in idx:
                    if not isinstance(out[i], BaseException):
                        out[i] = exc
        return out

    async def _process_group(
        self,
        alerts: Sequence[AlertClassified],
        entry_ids: Sequence[str],
        kinds: Sequence[DeliveryKind],
        idx: list[int],
        out: list[HandleResult | BaseException],
        *,
        new: bool,
    ) -> None:
        now = self.clock()
        targets: dict[int, list[Target]] = {}
        if new:
            index = await self.store.index()
            checks: list[tuple[str, str, str]] = []
            owners: list[tuple[int, Match]] = []
            for i in idx:
                alert, result = alerts[i], out[i]
                assert isinstance(result, HandleResult)
                try:
                    result.matches = match(alert, index, now)
                    a = alert.alert
                    # (only for the content-dedup checks of its matches: none, no hash)
                    fingerprint = content_fingerprint(a.title, a.text) if result.matches else ""
                except Exception as exc:
                    out[i] = exc
                    continue
                targets[i] = []
                aid = a.alert_id
                for m in result.matches:
                    checks.append((m.compiled.sub_id, fingerprint, aid))
                    owners.append((i, m))
            earliest = await self.dedup.first_for_batch(checks)
            for (i, m), earlier in zip(owners, earliest, strict=True):
                c = m.compiled
                if earlier is not None:
                    result = out[i]
                    assert isinstance(result, HandleResult)
                    result.duplicates.append((c.sub_id, earlier))
                    aid = alerts[i].alert.alert_id
                    log.debug("%s: same content as %s already sent to %s", aid, earlier, c.sub_id)
                    continue
                sub, reason, ts = c.sub, m.explanation, targets[i]
                sub_id, name, quiet = c.sub_id, c.sub_name, c.quiet_hours
                for url in c.sub_channels:
                    ts.append(Target(sub, url, "new", reason, sub_id, name, quiet))
        else:
            for i in idx:
                targets[i] = await self._route_revision(alerts[i], kinds[i])
        # the throttle decisions of every target of the group, in order, in one script call
        tchecks: list[tuple[str, str, str]] = []
        # per target of the alerts that have targets (in the order of ``targets``): the index of its
        # check in ``tchecks``, or -1 when the throttle is not consulted for it
        check_of: list[int] = []
        extreme_of: dict[int, bool] = {}
        for i, ts in targets.items():
            if not ts:
                continue
            extreme = extreme_of[i] = alerts[i].classification.severity == "Extreme"
            if extreme:
                check_of.extend([-1] * len(ts))
                continue
            a = alerts[i].alert
            member = f"{a.alert_id}:{a.revision}"
            for t in ts:
                if t.kind != "new":
                    check_of.append(-1)
                    continue
                quiet = t.quiet_hours
                if quiet is not None and quiet.is_quiet(now):
                    check_of.append(-1)
                    continue  # deferred before the throttle is consulted
                check_of.append(len(tchecks))
                tchecks.append((t.subscription_id, t.channel_url, member))
        oks: list[bool] = await self.throttle.allow_many(tchecks, now.timestamp()) if tchecks else []
        if len(oks) != len(tchecks):
            raise ValueError(f"throttle: {len(oks)} decisions for {len(tchecks)} checks")
        # plan every target: a job, or a quiet-hour deferral / a digest entry (written in one pipeline)
        jobs: list[DeliveryJob] = []
        job_owner: list[int] = []
        held: list[Callable[[Any], None]] = []
        sent_at = sent_at_now()  # the messages of the group are rendered together: one timestamp
        first = 0  # where the alert's targets start in check_of
        for i, ts in targets.items():
            alert, result = alerts[i], out[i]
            assert isinstance(result, HandleResult)
            if not ts:
                continue
            start, first = first, first + len(ts)
            shared = _AlertShared(alert, self.renderer, sent_at)
            planned: list[DeliveryJob] = []
            entry_id = entry_ids[i]
            extreme = extreme_of[i]
            aid, rev, cid, dl = shared.alert_id, shared.revision, shared.correlation_id, shared.dead_letter_fields
            eid = entry_id
            head = idempotency_head(aid, rev)
            own: tuple[str, ...] | None = None
            try:
                for j, t in enumerate(ts):
                    check = check_of[start + j]
                    decision = None if check < 0 else oks[check]
                    kind = t.kind
                    if (extreme or t.quiet_hours is None) and (
                        extreme or decision is not False or kind != "new"
                    ):  # neither held for quiet hours nor folded into a digest: _plan's job at once
                        # (self._job(alert, t, entry_id, shared), inline: the same job, once per delivery)
                        sub_id, url, reason = t.subscription_id, t.channel_url, t.reason
                        idem = _idempotency_key(head, sub_id, url)  # idempotency_key(aid, rev, sub_id, url)
                        message = shared.prepared(kind).render(
                            reason=reason, subscription_id=sub_id, subscription_name=t.subscription_name,
                            idempotency_key=idem,
                        )  # fmt: skip
                        if own is None:
                            own = shared.own_keys()
                        dj = DeliveryJob(aid, rev, cid, sub_id, url, kind, reason, idem, message, own, None, eid, dl)
                        planned.append(dj)
                        continue
                    job = self._plan(alert, t, now, result, entry_id, shared, decision, held)
                    if job is not None:
                        planned.append(job)
            except Exception as exc:
                out[i] = exc
                continue
            jobs.extend(planned)
            job_owner.extend([i] * len(planned))
        if held:
            async with self.redis.pipeline(transaction=True) as pipe:
                for queue in held:
                    queue(pipe)
                await pipe.execute()
        outcomes = await self.deliverer.run_batch(jobs)
        per_alert: dict[int, list[DeliveryOutcome]] = {}
        for i, outcome in zip(job_owner, outcomes, strict=True):
            per_alert.setdefault(i, []).append(outcome)
        for i, got in per_alert.items():
            result = out[i]
            if isinstance(result, HandleResult) and result.absorb(got):
                out[i] = DeliveryStillInFlight(result)

    def _plan(
        self,
        alert: AlertClassified,
        t: Target,
        now: datetime,
        result: HandleResult,
        entry_id: str,
        shared: _AlertShared,
        allowed: bool | None,
        held: list[Callable[[Any], None]],
    ) -> DeliveryJob | None:
        """:meth:`_schedule` without I/O: a deferral or digest entry is queued on ``held`` (commands
        for one pipeline the caller executes before delivering)."""
        a = alert.alert
        sub_id, url = t.subscription_id, t.channel_url
        extreme = alert.classification.severity == "Extreme"
        quiet = t.quiet_hours
        if quiet is not None and not extreme and quiet.is_quiet(now):
            idem = idempotency_key(a.alert_id, a.revision, sub_id, url)
            due = quiet.ends_after(now)
            doc = self._deferral(alert, t, due, entry_id, shared)
            held.append(lambda pipe: self.deferred.queue_add(pipe, idem, doc, due.timestamp()))
            if t.kind == "new":
                held.append(lambda pipe: self.recipients.queue_record(pipe, own_keys(alert), sub_id, url, t.reason))
            result.deferred.append((sub_id, mask_url(url), due))
            return None
        if t.kind == "new" and not extreme and allowed is False:
            member = f"{a.alert_id}:{a.revision}"
            item = self._digest_item(alert, t).as_dict()
            ts = now.timestamp()
            held.append(lambda pipe: self.digests.queue_add(pipe, sub_id, url, member, item, ts))
            held.append(lambda pipe: self.recipients.queue_record(pipe, own_keys(alert), sub_id, url, t.reason))
            result.digested.append((sub_id, mask_url(url)))
            return None
        return self._job(alert, t, entry_id, shared)

    async def due_deferred(self) -> HandleResult:
        """Deliver deferred notifications whose quiet hours are over."""
        now = self.clock()
        result = HandleResult()
        _, subs = await self.store.snapshot()
        for idem, doc in await self.deferred.due(now.timestamp()):
            sub = subs.get(doc["subscription_id"])
            url = self._channel_by_hash(sub, doc["channel_hash"]) if sub else None
            if sub is None or url is None:
                await self.deferred.done(idem)
                continue
            alert = AlertClassified.model_validate_json(doc["alert"])
            target = Target.of(sub, url, doc["kind"], doc["reason"])
            job = await self._schedule(alert, target, now, result, doc.get("entry_id", ""), skip_quiet=True)
            if job is not None:
                result.absorb(await self.deliverer.run([job]))
            await self.deferred.done(idem)
        return result

    async def flush_digests(self) -> HandleResult:
        """Send every digest that is due (one message per subscription and channel)."""
        now = self.clock()
        result = HandleResult()
        _, subs = await self.store.snapshot()
        jobs: list[tuple[DeliveryJob, str, str, list[str]]] = []
        for sub_id, chash in await self.digests.due(now.timestamp()):
            items = await self.digests.items(sub_id, chash)
            sub = subs.get(sub_id)
            url = self._channel_by_hash(sub, chash) if sub else None
            if sub is None or url is None or not items:
                await self.digests.done(sub_id, chash, list(items), now.timestamp())
                continue
            ids = list(items)
            digest_id = hashlib.sha256("\x1f".join(ids).encode()).hexdigest()[:16]
            idem = idempotency_key(f"digest:{digest_id}", 1, sub.id, url)
            digest_items = [
                DigestItem(
                    alert_id=i["alert_id"],
                    revision=i["revision"],
                    title=i["title"],
                    severity=i["severity"],
                    places=tuple(i["places"]),
                    url=i.get("url"),
                    reason=i["reason"],
                    threat_types=tuple(i.get("threat_types", ())),
                )
                for i in items.values()
            ]
            message = self.renderer.render_digest(
                digest_items, subscription_id=sub.id, subscription_name=sub.name, idempotency_key=idem
            )
            job = DeliveryJob(
                alert_id=f"digest:{digest_id}",
                revision=1,
                correlation_id=f"digest:{digest_id}",
                subscription_id=sub.id,
                channel_url=url,
                kind="digest",
                reason=f"digest of {len(ids)} alerts over the limit of {self.settings.throttle_max} per "
                f"{self.settings.throttle_window_s}s",
                idempotency_key=idem,
                message=message,
                dead_letter_fields={"digest_items": ",".join(ids)},
            )
            jobs.append((job, sub_id, chash, ids))
        outcomes = await self.deliverer.run([j for j, *_ in jobs])
        result.absorb(outcomes)
        for (_, sub_id, chash, ids), outcome in zip(jobs, outcomes, strict=True):
            if outcome.status != "skipped_in_flight":
                await self.digests.done(sub_id, chash, ids, now.timestamp())
        return result

    # ------------------------------------------------------------------ steps

    async def _route_revision(self, alert: AlertClassified, kind: DeliveryKind) -> list[Target]:
        originals = original_keys(alert)
        got = await self.recipients.recipients(originals)
        if not got:
            log.debug("%s: %s of an alert nobody received; nothing to send", alert.alert.alert_id, kind)
            return []
        _, subs = await self.store.snapshot()
        targets = []
        word = "cancellation" if kind == "cancel" else "update"
        for (sub_id, chash), reason in sorted(got.items()):
            sub = subs.get(sub_id)
            url = self._channel_by_hash(sub, chash) if sub else None
            if sub is None or url is None or not sub.enabled:
                continue
            targets.append(Target.of(sub, url, kind, f"{word} of an alert you received ({reason})"))
        return targets

    @staticmethod
    def _channel_by_hash(sub: Subscription | None, chash: str) -> str | None:
        if sub is None:
            return None
        return next((u for u in sub.channels if channel_hash(u) == chash), None)

    async def _schedule(
        self,
        alert: AlertClassified,
        t: Target,
        now: datetime,
        result: HandleResult,
        entry_id: str,
        *,
        skip_quiet: bool = False,
        shared: _AlertShared | None = None,
        allowed: bool | None = None,
    ) -> DeliveryJob | None:
        """One target at a time, with its own Redis calls (the release of quiet-hour deferrals;
        batches go through :meth:`_plan`)."""
        if shared is None:
            shared = _AlertShared(alert, self.renderer)
        a = alert.alert
        sub, url = t.subscription, t.channel_url
        extreme = alert.classification.severity == "Extreme"
        record = own_keys(alert)
        quiet = t.quiet_hours
        if not skip_quiet and quiet is not None and not extreme and quiet.is_quiet(now):
            idem = idempotency_key(a.alert_id, a.revision, sub.id, url)
            due = quiet.ends_after(now)
            await self.deferred.add(idem, self._deferral(alert, t, due, entry_id, shared), due.timestamp())
            if t.kind == "new":
                await self.recipients.record(record, sub.id, url, t.reason)
            result.deferred.append((sub.id, mask_url(url), due))
            return None
        if t.kind == "new" and not extreme:
            member = f"{a.alert_id}:{a.revision}"
            if allowed is None:
                allowed = await self.throttle.allow(sub.id, url, member, now.timestamp())
            if not allowed:
                item = self._digest_item(alert, t)
                await self.digests.add(sub.id, url, member, item.as_dict(), now.timestamp())
                await self.recipients.record(record, sub.id, url, t.reason)
                result.digested.append((sub.id, mask_url(url)))
                return None
        return self._job(alert, t, entry_id, shared)

    @staticmethod
    def _deferral(
        alert: AlertClassified, t: Target, due: datetime, entry_id: str, shared: _AlertShared
    ) -> dict[str, Any]:
        return {
            "alert": shared.alert_json(),
            "subscription_id": t.subscription_id,
            "channel_hash": channel_hash(t.channel_url),
            "kind": t.kind,
            "reason": t.reason + f" (held for quiet hours until {due.isoformat(timespec='minutes')})",
            "entry_id": entry_id,
        }

    @staticmethod
    def _digest_item(alert: AlertClassified, t: Target) -> DigestItem:
        a, c = alert.alert, alert.classification
        return DigestItem(
            alert_id=a.alert_id,
            revision=a.revision,
            title=a.title or a.text[:80],
            severity=c.severity,
            places=tuple(f"{loc.name}, {loc.country_code}" for loc in c.locations),
            url=a.url,
            reason=t.reason,
            threat_types=tuple(x.type for x in c.threat_types),
        )

    @staticmethod
    def _job(alert: AlertClassified, t: Target, entry_id: str, shared: _AlertShared) -> DeliveryJob:
        url, kind, reason = t.channel_url, t.kind, t.reason
        sub_id, aid, rev = t.subscription_id, shared.alert_id, shared.revision
        idem = idempotency_key(aid, rev, sub_id, url)
        message = shared.prepared(kind).render(
            reason=reason, subscription_id=sub_id, subscription_name=t.subscription_name, idempotency_key=idem
        )
        # (positional: DeliveryJob's fields in order, cheaper than keywords once per delivery)
        return DeliveryJob(
            aid, rev, shared.correlation_id, sub_id, url, kind, reason, idem, message, shared.own_keys(), None,
            entry_id, shared.dead_letter_fields,
        )  # fmt: skip
