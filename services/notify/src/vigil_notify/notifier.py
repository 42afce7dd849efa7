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
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vigil_shared.events import AlertClassified, DeadLetter, DeliveryKind, utcnow

from vigil_notify.channels.registry import ChannelRegistry, default_registry
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
from vigil_notify.rendering import DigestItem, PreparedMessage, Renderer
from vigil_notify.settings import NotifySettings
from vigil_notify.subscriptions import Subscription, SubscriptionStore, mask_url

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


@dataclass
class Target:
    subscription: Subscription
    channel_url: str
    kind: DeliveryKind
    reason: str


@dataclass
class HandleResult:
    events: list[Notification] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    deferred: list[tuple[str, str, datetime]] = field(default_factory=list)
    """(subscription_id, masked channel, due time)."""
    digested: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(subscription_id, alert_id that already carried the same content)."""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(subscription_id, masked channel, why) — already sent / in flight elsewhere."""
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    def absorb(self, outcomes: list[DeliveryOutcome]) -> None:
        for o in outcomes:
            self.outcomes.append(o)
            self.events.extend(o.events)
            if o.dead_letter is not None:
                self.dead_letters.append(o.dead_letter)
            if o.status.startswith("skipped"):
                self.skipped.append((o.job.subscription_id, mask_url(o.job.channel_url), o.status))


class _AlertShared:
    """What every delivery of one alert shares, computed on first use: the rendering per kind and
    the dead-letter copy of the event."""

    __slots__ = ("_alert", "_dl", "_prepared", "_renderer")

    def __init__(self, alert: AlertClassified, renderer: Renderer) -> None:
        self._alert, self._renderer = alert, renderer
        self._prepared: dict[str, PreparedMessage] = {}
        self._dl: str | None = None

    def prepared(self, kind: DeliveryKind) -> PreparedMessage:
        p = self._prepared.get(kind)
        if p is None:
            p = self._prepared[kind] = self._renderer.prepare(self._alert, kind=kind)
        return p

    def dead_letter_fields(self) -> dict[str, str]:
        if self._dl is None:
            self._dl = self._alert.model_dump_json()
        return {"event": self._dl}


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
        self.store = store or SubscriptionStore(redis, refresh_interval_s=self.settings.subscriptions_refresh_s)
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
        now = self.clock()
        result = HandleResult()
        kind = revision_kind(alert)
        if kind == "new":
            targets = await self._route_new(alert, now, result)
        else:
            targets = await self._route_revision(alert, kind)
        shared = _AlertShared(alert, self.renderer)
        allowed = await self._throttle_many(alert, targets, now)
        jobs = []
        for i, t in enumerate(targets):
            job = await self._schedule(alert, t, now, result, entry_id, shared=shared, allowed=allowed.get(i))
            if job is not None:
                jobs.append(job)
        result.absorb(await self.deliverer.run(jobs))
        return result

    async def _throttle_many(self, alert: AlertClassified, targets: list[Target], now: datetime) -> dict[int, bool]:
        """The throttle decision of every target :meth:`_schedule` would ask about, in one script
        call, in target order (the same order and the same effect as one call per target)."""
        if alert.classification.severity == "Extreme":
            return {}
        a = alert.alert
        member = f"{a.alert_id}:{a.revision}"
        idx: list[int] = []
        checks: list[tuple[str, str, str]] = []
        for i, t in enumerate(targets):
            if t.kind != "new":
                continue
            quiet = t.subscription.filter.quiet_hours
            if quiet is not None and quiet.is_quiet(now):
                continue  # deferred before the throttle is consulted
            idx.append(i)
            checks.append((t.subscription.id, t.channel_url, member))
        if not checks:
            return {}
        return dict(zip(idx, await self.throttle.allow_many(checks, now.timestamp()), strict=True))

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
            target = Target(sub, url, doc["kind"], doc["reason"])
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

    async def _route_new(self, alert: AlertClassified, now: datetime, result: HandleResult) -> list[Target]:
        index = await self.store.index()
        result.matches = match(alert, index, now)
        fingerprint = content_fingerprint(alert.alert.title, alert.alert.text)
        targets: list[Target] = []
        earliest = await self.dedup.first_for_many(
            [m.subscription.id for m in result.matches], fingerprint, alert.alert.alert_id
        )
        for m in result.matches:
            earlier = earliest[m.subscription.id]
            if earlier is not None:
                result.duplicates.append((m.subscription.id, earlier))
                log.info(
                    "%s: same content as %s already sent to %s",
                    alert.alert.alert_id,
                    earlier,
                    m.subscription.id,
                )
                continue
            targets.extend(Target(m.subscription, url, "new", m.explanation) for url in m.subscription.channels)
        return targets

    async def _route_revision(self, alert: AlertClassified, kind: DeliveryKind) -> list[Target]:
        originals = original_keys(alert)
        got = await self.recipients.recipients(originals)
        if not got:
            log.info("%s: %s of an alert nobody received; nothing to send", alert.alert.alert_id, kind)
            return []
        _, subs = await self.store.snapshot()
        targets = []
        word = "cancellation" if kind == "cancel" else "update"
        for (sub_id, chash), reason in sorted(got.items()):
            sub = subs.get(sub_id)
            url = self._channel_by_hash(sub, chash) if sub else None
            if sub is None or url is None or not sub.enabled:
                continue
            targets.append(Target(sub, url, kind, f"{word} of an alert you received ({reason})"))
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
        if shared is None:
            shared = _AlertShared(alert, self.renderer)
        a = alert.alert
        sub, url = t.subscription, t.channel_url
        idem = idempotency_key(a.alert_id, a.revision, sub.id, url)
        extreme = alert.classification.severity == "Extreme"
        record = own_keys(alert)
        quiet = sub.filter.quiet_hours
        if not skip_quiet and quiet is not None and not extreme and quiet.is_quiet(now):
            due = quiet.ends_after(now)
            doc: dict[str, Any] = {
                "alert": alert.model_dump_json(),
                "subscription_id": sub.id,
                "channel_hash": channel_hash(url),
                "kind": t.kind,
                "reason": t.reason + f" (held for quiet hours until {due.isoformat(timespec='minutes')})",
                "entry_id": entry_id,
            }
            await self.deferred.add(idem, doc, due.timestamp())
            if t.kind == "new":
                await self.recipients.record(record, sub.id, url, t.reason)
            result.deferred.append((sub.id, mask_url(url), due))
            return None
        if t.kind == "new" and not extreme:
            member = f"{a.alert_id}:{a.revision}"
            if allowed is None:
                allowed = await self.throttle.allow(sub.id, url, member, now.timestamp())
            if not allowed:
                c = alert.classification
                item = DigestItem(
                    alert_id=a.alert_id,
                    revision=a.revision,
                    title=a.title or a.text[:80],
                    severity=c.severity,
                    places=tuple(f"{loc.name}, {loc.country_code}" for loc in c.locations),
                    url=a.url,
                    reason=t.reason,
                    threat_types=tuple(x.type for x in c.threat_types),
                )
                await self.digests.add(sub.id, url, member, item.as_dict(), now.timestamp())
                await self.recipients.record(record, sub.id, url, t.reason)
                result.digested.append((sub.id, mask_url(url)))
                return None
        message = shared.prepared(t.kind).render(
            reason=t.reason,
            subscription_id=sub.id,
            subscription_name=sub.name,
            idempotency_key=idem,
        )
        return DeliveryJob(
            alert_id=a.alert_id,
            revision=a.revision,
            correlation_id=alert.correlation_id,
            subscription_id=sub.id,
            channel_url=url,
            kind=t.kind,
            reason=t.reason,
            idempotency_key=idem,
            message=message,
            record_under=record,
            dead_letter_fields=shared.dead_letter_fields(),
            entry_id=entry_id,
        )
