"""Subscriptions: who wants which alerts, on which channels, and where they are kept.

A :class:`Subscription` is a traveller's enrolment or a desk's standing order: owner contact,
one or more channel URLs and a :class:`SubscriptionFilter`. Subscriptions live in Redis as one hash
of JSON documents (``vigil:subscriptions``) plus a version counter (``vigil:subscriptions:version``)
that every write bumps in the same transaction. A :class:`SubscriptionStore` caches the set and the
:class:`~vigil_notify.matching.SubscriptionIndex` built from it and re-checks the counter at most
every ``refresh_interval_s`` seconds, so a change made through any replica, the API, the CLI or a
YAML sync reaches every notify replica without a restart.

Channel URLs carry secrets (SMTP passwords, bot tokens, webhook keys). :func:`mask_url` hides them;
everything that leaves this package for logs, events or API responses goes through it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import re
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from vigil_shared.events import Severity, TargetType, ThreatType, Urgency
from vigil_shared.streams import key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from vigil_notify.matching import SubscriptionIndex

log = logging.getLogger(__name__)

SUBSCRIPTIONS_KEY = key("subscriptions")
VERSION_KEY = key("subscriptions", "version")
_TRUSTED = {"trusted": True}  # stored documents were validated on write; skip channel probing

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ISO2_RE = re.compile(r"^[A-Z]{2}$")

# ---------------------------------------------------------------------------------------- masking

_SECRET_QUERY_KEYS = {
    "secret", "token", "password", "pass", "pwd", "key", "apikey", "api_key", "access_token",
    "auth", "signature", "sig", "webhook", "bot", "botkey", "user_key", "app_token",
}  # fmt: skip
MASK = "****"


@functools.lru_cache(maxsize=16384)
def mask_url(url: str) -> str:
    """``url`` with every secret replaced by ``****``.

    Masks the userinfo password (or a lone userinfo, which several schemes use as a token), query
    values whose name suggests a secret, and, for schemes other than Vigil's own
    (``console``/``jsonl``/``webhook+…``), every path segment: Slack, Telegram, Discord and friends
    put tokens in the path. Never raises: an unparsable URL becomes ``<scheme>://****``.
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                user, _ = userinfo.split(":", 1)
                userinfo = f"{user}:{MASK}" if user else f":{MASK}"
            else:
                userinfo = MASK
            netloc = f"{userinfo}@{host}"
        query = urlencode(
            [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query, True)],
            safe="*@:/,",
        )
        path = parts.path
        first_class = scheme in {"console", "jsonl"} or scheme.startswith("webhook+")
        if not first_class:
            # third-party services: tokens live in the path (slack://T/B/C, tgram://bottoken/chat)
            if path.strip("/"):
                path = "/" + "/".join(MASK for seg in path.strip("/").split("/") if seg)
            # e.g. tgram://123456:ABC-token/chat, discord://webhook_id/webhook_token
            host_is_token = scheme in _TOKEN_HOSTS or not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", netloc)
            if "@" not in parts.netloc and scheme not in {"mailto", "mailtos"} and netloc and host_is_token:
                netloc = MASK
        out = f"{parts.scheme}://{netloc}{path}"
        if query:
            out += f"?{query}"
        if parts.fragment:
            out += f"#{MASK}"
        return out
    except Exception:  # never let masking leak the original through an exception message
        scheme = url.split(":", 1)[0] if ":" in url else "unknown"
        return f"{scheme}://{MASK}"


_TOKEN_HOSTS = {"tgram", "discord", "slack", "pover", "pushover", "gotify", "gotifys", "msteams"}


# ---------------------------------------------------------------------------------------- models


class NearFilter(BaseModel):
    """A circle around a point: the alert matches when one of its locations lies inside."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    radius_km: float = Field(gt=0.0, le=20_000.0)


class ActiveWindow(BaseModel):
    """The dates a subscription is active (a trip), inclusive; either end may be open."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: date | None = Field(default=None, alias="from")
    until: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ActiveWindow:
        if self.from_ and self.until and self.until < self.from_:
            raise ValueError("until must not be before from")
        return self

    def contains(self, day: date) -> bool:
        return (self.from_ is None or self.from_ <= day) and (self.until is None or day <= self.until)


class QuietHours(BaseModel):
    """Local hours during which non-Extreme notifications are deferred (not dropped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: dtime
    end: dtime
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def is_quiet(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.tz)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps midnight

    def ends_after(self, now: datetime) -> datetime:
        """The first instant at or after ``now`` that is outside quiet hours (an aware datetime)."""
        zone = ZoneInfo(self.tz)
        local = now.astimezone(zone)
        if not self.is_quiet(now):
            return now
        candidate = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate = (local + timedelta(days=1)).replace(
                hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0
            )
        # round-trip through UTC so a DST gap/fold lands on a real instant
        candidate = candidate.replace(tzinfo=zone)
        return candidate.astimezone(now.tzinfo)


@functools.lru_cache(maxsize=65536)
def normalise_place(name: str) -> str:
    """Case-, accent- and punctuation-insensitive place name: ``St. Petersburg`` == ``Saint-Petersburg``."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[-_'’.]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^(st|ste|sankt|san|sao)\b ", "saint ", text)
    return text


class PlaceRef(BaseModel):
    """A place as a subscriber names it: a geonameid, a name, or ``Name, CC``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    geonameid: int | None = None
    name: str | None = None
    country_code: str | None = None

    @model_serializer(mode="plain")
    def _compact(self) -> str | int | dict[str, Any]:
        if self.name and self.geonameid is not None:
            return {"geonameid": self.geonameid, "name": self.name, "country_code": self.country_code}
        return self.label if self.name else int(self.geonameid or 0)

    @property
    def label(self) -> str:
        if self.name:
            return f"{self.name}, {self.country_code}" if self.country_code else self.name
        return f"geonameid {self.geonameid}"

    @property
    def norm(self) -> str:
        return normalise_place(self.name or "")


def parse_place(value: str | int | dict[str, Any] | PlaceRef) -> PlaceRef:
    if isinstance(value, PlaceRef):
        return value
    if isinstance(value, dict):
        return PlaceRef.model_validate(value)
    if isinstance(value, bool):
        raise ValueError("a place is a name, 'Name, CC' or a geonameid")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return PlaceRef(geonameid=int(value))
    text = str(value).strip()
    if not text:
        raise ValueError("a place name must not be empty")
    name, sep, cc = text.rpartition(",")
    if sep and _ISO2_RE.fullmatch(cc.strip().upper()) and name.strip():
        return PlaceRef(name=name.strip(), country_code=cc.strip().upper())
    return PlaceRef(name=text)


class SubscriptionFilter(BaseModel):
    """What a subscriber wants. Empty lists mean "any".

    Location: the alert must touch one of ``countries``, ``places`` or the ``near`` circle when
    any of them is given (they are alternatives); with none of them, location does not matter.
    Everything else is a further condition (AND).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    countries: tuple[str, ...] = ()
    places: tuple[PlaceRef, ...] = ()
    near: NearFilter | None = None
    active: ActiveWindow | None = None
    threat_types: tuple[ThreatType, ...] = ()
    target_types: tuple[TargetType, ...] = ()
    min_severity: Severity = "Unknown"
    min_urgency: Urgency = "Unknown"
    include_non_threats: bool = False
    quiet_hours: QuietHours | None = None

    @field_validator("countries", mode="before")
    @classmethod
    def _iso2(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        out = []
        for item in value or ():
            code = str(item).strip().upper()
            if not _ISO2_RE.fullmatch(code):
                raise ValueError(f"{item!r} is not an ISO 3166-1 alpha-2 country code")
            out.append(code)
        return tuple(dict.fromkeys(out))

    @field_validator("places", mode="before")
    @classmethod
    def _places(cls, value: Any) -> Any:
        if isinstance(value, str | int):
            value = [value]
        return tuple(parse_place(v) for v in value or ())

    @property
    def has_location(self) -> bool:
        return bool(self.countries or self.places or self.near)


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    name: str = Field(min_length=1, max_length=200)
    owner: str = Field(default="", max_length=320)
    """Contact of the person responsible (e-mail, handle); informative only."""
    channels: tuple[str, ...] = Field(min_length=1)
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    enabled: bool = True
    managed_by: str | None = None
    """Set by :meth:`SubscriptionStore.load_yaml`: the file that owns this subscription (for pruning)."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.fullmatch(value):
            raise ValueError("id must be 1-64 characters of letters, digits, '_', '.', '-'")
        return value

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = [value]
        if info.context and info.context.get("trusted"):
            return tuple(value or ())
        from vigil_notify.channels.registry import default_registry

        registry = default_registry()
        for i, url in enumerate(value or ()):
            if not isinstance(url, str) or "://" not in url:
                raise ValueError(f"channel {i} is not a URL (scheme://...)")
            problem = registry.check(url)
            if problem:
                raise ValueError(f"channel {i} ({mask_url(url)}): {problem}")
        return tuple(dict.fromkeys(value or ()))

    def masked(self) -> dict[str, Any]:
        """JSON-ready dict with every channel URL masked (for API responses, CLI output, logs)."""
        data = self.model_dump(mode="json", by_alias=True)
        data["channels"] = [mask_url(c) for c in self.channels]
        return data


def validation_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Readable problems naming the field (``filter.countries.0``), never echoing input values."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "<root>",
            "loc": list(err["loc"]),
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]


class SubscriptionError(ValueError):
    """A subscription document is invalid; ``problems`` name each bad field."""

    def __init__(self, problems: list[dict[str, Any]], where: str = "") -> None:
        self.problems = problems
        text = "; ".join(f"{p['field']}: {p['msg']}" for p in problems)
        super().__init__(f"{where}{': ' if where else ''}{text}")


def _problem(field_name: str, msg: str) -> dict[str, Any]:
    return {"field": field_name, "loc": field_name.split("."), "msg": msg, "type": "value_error"}


def parse_subscription(data: dict[str, Any], where: str = "") -> Subscription:
    try:
        return Subscription.model_validate(data)
    except ValidationError as exc:
        raise SubscriptionError(validation_problems(exc), where) from None


# ---------------------------------------------------------------------------------------- store


@dataclass(frozen=True)
class SyncResult:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()


class SubscriptionExists(KeyError):
    pass


FREEZE_INTERVAL_S = 60.0
_last_freeze = float("-inf")


def freeze_long_lived(*, interval_s: float = FREEZE_INTERVAL_S) -> bool:
    """Move every live object into the garbage collector's permanent generation (``gc.freeze``),
    at most once per ``interval_s`` per process; returns whether it did.

    The subscription set and its index are hundreds of thousands of long-lived objects (with the
    imported modules): every full collection traversed them all, about a third of notify's CPU
    under load. Frozen objects are never traversed (they are still freed by reference counting
    when dropped). Each call first unfreezes and collects, so garbage cycles among objects frozen
    by an earlier call (an old index, say) are reclaimed, not kept for ever."""
    global _last_freeze
    now = time.monotonic()
    if now - _last_freeze < interval_s:
        return False
    _last_freeze = now
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return True


def space_full_collections(gen1_per_full: int) -> None:
    """Let a full (generation 2) collection run only after ``gen1_per_full`` generation-1
    collections (CPython's third threshold; its default is 10), never lowering it.

    After :func:`freeze_long_lived` almost nothing alive is in generation 2 any more, so CPython's
    other gate for a full collection (the objects promoted since the last one exceed a quarter of
    the survivors of it) is always open: every tenth generation-1 collection was a full one, and
    all it found to traverse was the read batch in flight (~40,000 objects of decoded alerts and
    their deliveries, promoted while the batch awaits Redis), about a sixth of notify's CPU,
    reclaiming nothing (the hot path makes no reference cycles that outlive generation 1: a
    forced full collection after every 10 batches found 0 unreachable objects). Full collections
    still run, so a cycle that does reach generation 2 is reclaimed a few seconds later, not never."""
    t0, t1, t2 = gc.get_threshold()
    if gen1_per_full > t2:
        gc.set_threshold(t0, t1, gen1_per_full)


def space_young_collections(threshold: int) -> None:
    """Let a young (generation 0) collection run only once ``threshold`` more container objects
    were allocated than freed (CPython's first threshold; its default is 700), never lowering it.

    A read batch keeps what it allocates (decoded alerts, jobs, messages, events: ~30,000 objects
    for 200 bench alerts) alive until it is done, then frees it all by reference counting (the hot
    path makes no reference cycles: tested). At 700, a young collection ran every few alerts and each
    traversed the part of the batch made since the last one, then a generation-1 collection
    traversed it again, reclaiming nothing: ~25 µs per alert, an eighth of notify's CPU. Above
    what a batch holds at once, the count the threshold watches falls back at each batch's end
    and young collections hardly ever run; cyclic garbage, if some code path makes any, still
    makes them run once that much of it has piled up (a bounded ~10-20 MB at 100,000 objects)."""
    t0, t1, t2 = gc.get_threshold()
    if threshold > t0:
        gc.set_threshold(threshold, t1, t2)


@dataclass
class _Cache:
    version: int = -1
    checked_at: float = float("-inf")
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    index: SubscriptionIndex | None = None


class SubscriptionStore:
    """Subscriptions in Redis, shared by every replica; CRUD, YAML sync and a cached index.

    Writes go through ``MULTI`` with an ``INCR`` of the version key; readers compare the version at
    most every ``refresh_interval_s`` (0: on every call) and reload the whole set when it moved.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        refresh_interval_s: float = 1.0,
        freeze_gc: bool = False,
        gen1_per_full_collection: int = 0,
        young_threshold: int = 0,
    ) -> None:
        self.redis = redis
        self.refresh_interval_s = refresh_interval_s
        self.freeze_gc = freeze_gc
        """Call :func:`freeze_long_lived` after each index (re)build."""
        self.gen1_per_full_collection = gen1_per_full_collection
        """With ``freeze_gc``: :func:`space_full_collections` with it after each freeze (0: leave CPython's)."""
        self.young_threshold = young_threshold
        """With ``freeze_gc``: :func:`space_young_collections` with it after each freeze (0: leave CPython's)."""
        self._cache = _Cache()
        self._refreshing = asyncio.Lock()
        """Single flight: concurrent handlers wait for one refresh instead of each loading the set."""

    # -- reads
    async def version(self) -> int:
        raw = await self.redis.get(VERSION_KEY)
        return int(raw or 0)

    async def _load(self) -> tuple[int, dict[str, Subscription]]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(VERSION_KEY)
            pipe.hgetall(SUBSCRIPTIONS_KEY)
            raw_version, raw = await pipe.execute()
        subs: dict[str, Subscription] = {}
        for sub_id, doc in raw.items():
            sid = sub_id.decode() if isinstance(sub_id, bytes) else sub_id
            try:
                subs[sid] = Subscription.model_validate_json(doc, context=_TRUSTED)
            except ValidationError as exc:
                log.warning("skipping invalid stored subscription %s: %s", sid, exc.error_count())
        return int(raw_version or 0), subs

    async def list(self) -> list[Subscription]:
        _, subs = await self._load()
        return sorted(subs.values(), key=lambda s: s.id)

    async def get(self, sub_id: str) -> Subscription | None:
        doc = await self.redis.hget(SUBSCRIPTIONS_KEY, sub_id)
        return Subscription.model_validate_json(doc, context=_TRUSTED) if doc else None

    async def snapshot(self, *, force: bool = False) -> tuple[int, dict[str, Subscription]]:
        """The cached (version, subscriptions), refreshed when the stored version moved."""
        if force or time.monotonic() - self._cache.checked_at >= self.refresh_interval_s:
            async with self._refreshing:
                # Whoever held the lock may have refreshed meanwhile: a batch of concurrent handlers
                # (or a burst at start-up) costs one version check and at most one load, not one each.
                now = time.monotonic()
                cache = self._cache
                if force or now - cache.checked_at >= self.refresh_interval_s:
                    version = await self.version()
                    if version != cache.version:
                        version, subs = await self._load()
                        self._cache = _Cache(version=version, checked_at=now, subscriptions=subs)
                    else:
                        cache.checked_at = now
        cache = self._cache
        return cache.version, cache.subscriptions

    async def index(self, *, force: bool = False) -> SubscriptionIndex:
        """The :class:`SubscriptionIndex` of the current set, rebuilt once per version."""
        from vigil_notify.matching import SubscriptionIndex

        await self.snapshot(force=force)
        cache = self._cache
        if cache.index is None or cache.index.version != cache.version:
            cache.index = SubscriptionIndex(cache.subscriptions.values(), version=cache.version)
            if self.freeze_gc:
                freeze_long_lived()
                if self.gen1_per_full_collection:
                    space_full_collections(self.gen1_per_full_collection)
                if self.young_threshold:
                    space_young_collections(self.young_threshold)
        return cache.index

    # -- writes
    async def put(self, sub: Subscription) -> bool:
        """Create or replace; returns True when it was created."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(SUBSCRIPTIONS_KEY, sub.id, sub.model_dump_json(by_alias=True))
            pipe.incr(VERSION_KEY)
            created, _ = await pipe.execute()
        return bool(created)

    async def create(self, sub: Subscription) -> Subscription:
        created = await self.redis.hsetnx(SUBSCRIPTIONS_KEY, sub.id, sub.model_dump_json(by_alias=True))
        if not created:
            raise SubscriptionExists(sub.id)
        await self.redis.incr(VERSION_KEY)
        return sub

    async def delete(self, sub_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(SUBSCRIPTIONS_KEY, sub_id)
            pipe.incr(VERSION_KEY)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def load_yaml(
        self, path: str | Path, *, prune: bool = False, manager: str | None = None
    ) -> SyncResult:
        """Declarative sync from a YAML file (GitOps).

        The file holds ``subscriptions: [...]`` (or a bare list). Every subscription in it is
        upserted and marked ``managed_by = manager`` (default ``file:<file name>``). With ``prune``,
        subscriptions marked as managed by the same manager but absent from the file are deleted;
        subscriptions created through the API or CLI are never pruned. The whole file is validated
        before anything is written; :class:`SubscriptionError` names the entry and field.
        """
        path = Path(path)
        manager = manager or f"file:{path.name}"
        doc = load_document(path.read_text(encoding="utf-8")) or []
        entries = doc.get("subscriptions", []) if isinstance(doc, dict) else doc
        if not isinstance(entries, list):
            raise SubscriptionError([_problem("subscriptions", "must be a list")], str(path))
        wanted: list[Subscription] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise SubscriptionError([_problem(f"subscriptions.{i}", "must be a mapping")], str(path))
            if "id" not in entry:
                raise SubscriptionError([_problem(f"subscriptions.{i}.id", "required in a file")], str(path))
            sub = parse_subscription({**entry, "managed_by": manager}, f"{path}: subscriptions.{i}")
            wanted.append(sub)
        ids = [s.id for s in wanted]
        id_set = set(ids)
        if len(id_set) != len(ids):
            dup = next(i for i, count in Counter(ids).items() if count > 1)
            raise SubscriptionError([_problem("subscriptions", f"duplicate id {dup!r}")], str(path))
        _, current = await self._load()
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        for sub in wanted:
            old = current.get(sub.id)
            if old == sub:
                unchanged.append(sub.id)
                continue
            (updated if old else created).append(sub.id)
        pruned = []
        if prune:
            pruned = [s.id for s in current.values() if s.managed_by == manager and s.id not in id_set]
        changed = set(created) | set(updated)
        changes = [s for s in wanted if s.id in changed]
        if changes or pruned:
            async with self.redis.pipeline(transaction=True) as pipe:
                for sub in changes:
                    pipe.hset(SUBSCRIPTIONS_KEY, sub.id, sub.model_dump_json(by_alias=True))
                if pruned:
                    pipe.hdel(SUBSCRIPTIONS_KEY, *pruned)
                pipe.incr(VERSION_KEY)
                await pipe.execute()
        return SyncResult(tuple(created), tuple(updated), tuple(unchanged), tuple(pruned))


_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_document(text: str) -> Any:
    """A subscriptions file's content: JSON (which is YAML) parsed as JSON, anything else with the
    safe YAML loader (libyaml's when available; the pure-Python one took ~12 CPU-s and ~170 MB for
    10,000 subscriptions)."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass  # not JSON after all (a YAML flow mapping, say): YAML decides
    return yaml.load(text, Loader=_YamlLoader)  # a safe loader: CSafeLoader or SafeLoader


def iter_channels(subs: Iterable[Subscription]) -> Iterable[tuple[Subscription, str]]:
    for sub in subs:
        for url in sub.channels:
            yield sub, url
