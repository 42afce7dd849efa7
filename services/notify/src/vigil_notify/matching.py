"""Alert x subscriptions -> matches, each with the reason in words. Pure functions, no I/O.

Semantics of a :class:`~vigil_notify.subscriptions.SubscriptionFilter` (empty means "any"):

* location — when the filter names ``countries``, ``places`` or ``near``, at least one must hold:
  a country of the alert (``classification.countries`` or a location's ``country_code``) is listed;
  a location has a listed geonameid, or a listed name (accent/case/"St."-insensitive; ``Name, CC``
  also checks the country); a ``Name, CC`` place also matches a country-wide location of that
  country (a nationwide alert covers the city); a city/region location with coordinates lies within
  ``near.radius_km`` (haversine) — country-level centroids are never used for ``near``;
* ``threat_types`` / ``target_types`` — the alert has at least one of them;
* ``min_severity`` / ``min_urgency`` — by :data:`SEVERITY_RANK` / :data:`URGENCY_RANK`;
* non-threat messages (``is_threat`` false) only with ``include_non_threats``;
* ``active`` — today (UTC date of ``now``) within the trip window;
* disabled subscriptions never match (the index leaves them out).

:class:`SubscriptionIndex` is built once per subscription-set version. It files each subscription
under the keys that can make it match — country, place name, geonameid, a 1°x1° geo cell of its
``near`` circle, or (without any location) its threat types or a catch-all list — so one alert looks
up a few buckets instead of scanning every subscription; each bucket is kept once per alert severity
rank, holding only the subscriptions whose ``min_severity`` that rank meets (the floor turns most of
a bucket away). The full predicate then runs on the candidates only. The index is a superset
filter by construction; tests check it equals a brute force scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, NamedTuple

from pydantic import BaseModel
from vigil_shared.events import SEVERITY_RANK, URGENCY_RANK, AlertClassified

from vigil_notify.classified import LeanLocation
from vigil_notify.subscriptions import QuietHours, Subscription, normalise_place

EARTH_RADIUS_KM = 6371.0088
CELL_DEG = 1.0
MAX_CELLS = 400
"""A ``near`` circle spanning more cells than this goes to the wide-circle list (checked always)."""


_DEG_TO_RAD: Final = math.pi / 180.0
"""What ``math.radians`` multiplies by (CPython's ``degToRad``, ``Py_MATH_PI / 180.0``): the same
double, so ``x * _DEG_TO_RAD`` is ``math.radians(x)`` bit for bit, without a call (compiled: a
module attribute lookup, a call and a boxed float each; tested equal)."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = lat1 * _DEG_TO_RAD, lat2 * _DEG_TO_RAD
    dp, dl = p2 - p1, (lon2 - lon1) * _DEG_TO_RAD
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class Match:
    """A subscription an alert reaches, with the reasons (built lazily: the hot path skips them)."""

    __slots__ = ("_alert", "_reasons", "_where", "compiled", "subscription")

    def __init__(self, compiled: _Compiled, alert: AlertFeatures, where: str) -> None:
        self.subscription = compiled.sub
        self.compiled = compiled
        """The subscription as the index holds it (its id, name, channels and quiet hours read once)."""
        self._alert = alert
        self._where = where
        self._reasons: tuple[str, ...] | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        if self._reasons is None:
            self._reasons = self.compiled.reasons(self._alert, self._where)
        return self._reasons

    @property
    def explanation(self) -> str:
        return "matched: " + "; ".join(self.reasons)

    def __repr__(self) -> str:
        return f"Match({self.subscription.id!r}, {self.explanation!r})"


@dataclass(frozen=True, slots=True)
class _Loc:
    name: str
    norm: str
    country: str
    geonameid: int | None
    lat: float | None
    lon: float | None
    is_country: bool


_LocKey = tuple[str, str, int | None, float | None, float | None, str]
_LOCS: dict[_LocKey, _Loc] = {}
_LOCS_MAX = 16384


def _loc(key: _LocKey) -> _Loc:
    """The matching view of a location, ``key`` = (name, country code, geonameid, latitude,
    longitude, kind) (immutable, so shared by every alert naming the same place: the classifier's
    locations come from its gazetteer; a dict emptied when full, cheaper than an LRU cache)."""
    got = _LOCS.get(key)
    if got is None:
        if len(_LOCS) >= _LOCS_MAX:
            _LOCS.clear()
        name, country_code, geonameid, lat, lon, kind = key
        got = _LOCS[key] = _Loc(
            name=name,
            norm=normalise_place(name),
            country=country_code.upper(),
            geonameid=geonameid,
            lat=lat,
            lon=lon,
            is_country=kind == "country",
        )
    return got


_SHARED_LOCS: dict[int, tuple[LeanLocation, _Loc]] = {}
"""By ``id``: each :class:`~vigil_notify.classified.LeanLocation` notify's decode shares between alerts
(the object itself kept with it, so its ``id`` is not reused while its entry is here) and its
:func:`_loc` view (bounded like :data:`_LOCS`). Other locations are looked up by value."""


def fields_of(model: BaseModel) -> dict[str, Any]:
    """A pydantic model's field values (pydantic keeps them in the instance ``__dict__``): read
    there, a field skips ``BaseModel.__getattr__``'s hook, which every attribute read of a model
    pays (~80 ns; notify reads ~100 per alert)."""
    return model.__dict__


@dataclass(slots=True, init=False)
class AlertFeatures:
    """What matching needs from an alert, computed once per alert (treat as read-only; not frozen
    only because a frozen dataclass's ``__init__`` costs several times more, once per alert). Its
    own ``__init__`` (positional, the fields in order): compiled, the dataclass's generated one
    would stay interpreted, once per alert."""

    countries: frozenset[str]
    locations: tuple[_Loc, ...]
    threats: tuple[str, ...]
    threat_set: frozenset[str]
    targets: frozenset[str]
    severity: str
    urgency: str
    severity_rank: int
    urgency_rank: int
    is_threat: bool
    any_threat_reason: str
    """The reason a subscription without threat types gives for the alert's threats ("" when it
    has none): the same for every such subscription, spelled out once per alert."""
    severity_reason: str
    """``"severity "`` and the alert's severity: each reason's severity part but the floor."""

    def __init__(
        self,
        countries: frozenset[str],
        locations: tuple[_Loc, ...],
        threats: tuple[str, ...],
        threat_set: frozenset[str],
        targets: frozenset[str],
        severity: str,
        urgency: str,
        severity_rank: int,
        urgency_rank: int,
        is_threat: bool,
    ) -> None:
        self.countries, self.locations, self.threats, self.threat_set = countries, locations, threats, threat_set
        self.targets, self.severity, self.urgency = targets, severity, urgency
        self.severity_rank, self.urgency_rank, self.is_threat = severity_rank, urgency_rank, is_threat
        self.any_threat_reason = "threat " + ", ".join(threats) + " (any threat)" if threats else ""
        self.severity_reason = "severity " + severity

    @classmethod
    def of(cls, alert: AlertClassified) -> AlertFeatures:
        c = fields_of(fields_of(alert)["classification"])
        # (list comprehensions, not generator expressions: half the overhead on a few items)
        locs: list[_Loc] = []
        for loc in c["locations"]:
            # a location notify's decode shares between alerts: its view by identity (no key to build)
            shared = _SHARED_LOCS.get(id(loc)) if type(loc) is LeanLocation else None
            if shared is not None and shared[0] is loc:
                locs.append(shared[1])
                continue
            f = fields_of(loc)
            view = _loc((f["name"], f["country_code"], f["geonameid"], f["latitude"], f["longitude"], f["kind"]))
            if type(loc) is LeanLocation:
                if len(_SHARED_LOCS) >= _LOCS_MAX:
                    _SHARED_LOCS.clear()
                _SHARED_LOCS[id(loc)] = (loc, view)
            locs.append(view)
        countries = frozenset([loc.country for loc in locs])
        alert_countries: tuple[str, ...] = c["countries"]
        if alert_countries:
            countries = countries.union([cc.upper() for cc in alert_countries])
        threats = tuple([t.type for t in c["threat_types"]])
        severity: str = c["severity"]
        urgency: str = c["urgency"]
        return AlertFeatures(  # (not cls(...): a direct call of the compiled class, without arg parsing)
            countries,
            tuple(locs),
            threats,
            frozenset(threats),
            frozenset([t.type for t in c["targets"]]),
            severity,
            urgency,
            SEVERITY_RANK.get(severity, 0),
            URGENCY_RANK.get(urgency, 0),
            c["is_threat"],
        )


_COUNTRY = "country"


class _Place(NamedTuple):
    """A :class:`~vigil_notify.subscriptions.PlaceRef` with its normalised name computed once."""

    geonameid: int | None
    name: str | None
    norm: str
    country_code: str | None
    label: str


class _Compiled:
    """A subscription's filter in the shape the hot loop wants."""

    __slots__ = (
        "active_reason", "countries", "from_", "has_location", "ids", "include_non_threats", "min_sev",
        "min_urg", "names", "near", "places", "quiet_hours", "radius_text", "severity_floor", "sub", "sub_channels",
        "sub_id", "sub_name", "targets", "threats", "until", "urgency_floor", "windowed",
    )  # fmt: skip

    def __init__(self, sub: Subscription) -> None:
        f = sub.filter
        self.sub = sub
        # what the notifier reads of a matched subscription for each delivery (a pydantic model's
        # attribute costs ~80 ns a read; the subscription is immutable)
        self.sub_id: str = sub.id
        self.sub_name: str = sub.name
        self.sub_channels: tuple[str, ...] = sub.channels
        self.quiet_hours: QuietHours | None = f.quiet_hours
        self.countries = frozenset(f.countries)
        self.places = tuple(_Place(p.geonameid, p.name, p.norm, p.country_code, p.label) for p in f.places)
        self.ids = frozenset(p.geonameid for p in self.places if p.geonameid is not None)
        self.names = frozenset(p.norm for p in self.places if p.name)
        self.near = (f.near.lat, f.near.lon, f.near.radius_km) if f.near else None
        self.radius_text = f"{f.near.radius_km:g}" if f.near else ""
        """The circle's radius as its explanations write it (formatted once)."""
        self.has_location = f.has_location
        self.threats = frozenset(f.threat_types)
        self.targets = frozenset(f.target_types)
        self.min_sev = SEVERITY_RANK[f.min_severity]
        self.min_urg = URGENCY_RANK[f.min_urgency]
        self.include_non_threats = f.include_non_threats
        self.from_ = f.active.from_ if f.active else None
        self.until = f.active.until if f.active else None
        self.windowed = f.active is not None
        # the subscription's own words in every explanation, spelled out once
        self.severity_floor = f" >= {f.min_severity}"
        self.urgency_floor = f" >= {f.min_urgency}"
        self.active_reason = f"active {f.active.from_ or '…'}..{f.active.until or '…'}" if f.active else None

    def evaluate(self, a: AlertFeatures, today: date) -> Match | None:
        # every test must pass, so their order is free: the one that turns most candidates away first
        # (the severity and urgency floors: the index only hands out candidates whose severity floor
        # the alert meets, but match_one and match_scan do not go through it)
        if a.severity_rank < self.min_sev or a.urgency_rank < self.min_urg:
            return None
        if self.windowed and (
            (self.from_ is not None and today < self.from_) or (self.until is not None and today > self.until)
        ):
            return None
        if not a.is_threat and not self.include_non_threats:
            return None
        if self.threats and not (self.threats & a.threat_set):
            return None
        if self.targets and not (self.targets & a.targets):
            return None
        if self.has_location:
            where = self._where(a)
            if where is None:
                return None
        else:
            where = "any location"
        return Match(self, a, where)

    def reasons(self, a: AlertFeatures, where: str) -> tuple[str, ...]:
        if where is _COUNTRY:
            where = "country " + ", ".join(sorted(self.countries & a.countries))
        reasons = [where]
        if self.threats:
            reasons.append("threat " + ", ".join([t for t in a.threats if t in self.threats]))
        elif a.threats:
            reasons.append(a.any_threat_reason)
        elif not a.is_threat:
            reasons.append("non-threat message (included)")
        if self.targets:
            reasons.append("target " + ", ".join(sorted(self.targets & a.targets)))
        reasons.append(a.severity_reason + self.severity_floor)
        if self.min_urg:
            reasons.append("urgency " + a.urgency + self.urgency_floor)
        if self.active_reason is not None:
            reasons.append(self.active_reason)
        return tuple(reasons)

    def _where(self, a: AlertFeatures) -> str | None:
        if self.ids or self.names:
            for loc in a.locations:
                if loc.geonameid is not None and loc.geonameid in self.ids:
                    return f"place {loc.name}, {loc.country} (geonameid {loc.geonameid})"
                if loc.norm in self.names:
                    for p in self.places:
                        if p.name and p.norm == loc.norm and (p.country_code in (None, loc.country)):
                            return f"place {loc.name}, {loc.country}"
            for loc in a.locations:
                if loc.is_country:
                    for p in self.places:
                        if p.country_code == loc.country:
                            return f"country-wide alert for {loc.country} covers {p.label}"
        if self.near is not None:
            lat0, lon0, radius = self.near
            best: tuple[float, _Loc] | None = None
            for loc in a.locations:
                if loc.is_country or loc.lat is None or loc.lon is None:
                    continue
                d = haversine_km(lat0, lon0, loc.lat, loc.lon)
                if d <= radius and (best is None or d < best[0]):
                    best = (d, loc)
            if best is not None:
                d, loc = best
                return f"place {loc.name}, {loc.country} within {self.radius_text} km ({d:.0f} km away)"
        if self.countries and not self.countries.isdisjoint(a.countries):
            return _COUNTRY  # spelled out lazily in reasons()
        return None


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return (math.floor(lat / CELL_DEG), math.floor(((lon + 180.0) % 360.0 - 180.0) / CELL_DEG))


def _circle_cells(lat: float, lon: float, radius_km: float) -> list[tuple[int, int]] | None:
    """Every 1° cell a circle's bounding box touches, or None when that is too many."""
    dlat = radius_km / 111.0 + 1e-6
    lat_lo, lat_hi = lat - dlat, lat + dlat
    if lat_lo <= -89.0 or lat_hi >= 89.0:
        return None  # near a pole: longitudes converge, do not index
    coslat = min(math.cos(math.radians(lat_lo)), math.cos(math.radians(lat_hi)))
    dlon = radius_km / (111.0 * coslat) + 1e-6
    if dlon >= 180.0:
        return None
    rows = range(math.floor(lat_lo / CELL_DEG), math.floor(lat_hi / CELL_DEG) + 1)
    lon_lo, lon_hi = lon - dlon, lon + dlon
    ncols = math.floor(lon_hi / CELL_DEG) - math.floor(lon_lo / CELL_DEG) + 1
    if len(rows) * ncols > MAX_CELLS:
        return None
    cols = {_cell(0.0, lon_lo + i * CELL_DEG)[1] for i in range(ncols)} | {_cell(0.0, lon_hi)[1]}
    return [(r, c) for r in rows for c in cols]


_SEVERITY_RANKS = range(max(SEVERITY_RANK.values()) + 1)

Floors = tuple[tuple[_Compiled, ...], ...]
"""A bucket of subscriptions by alert severity rank: entry ``r`` holds those whose severity floor
an alert of rank ``r`` meets (:func:`_by_floor`)."""


def _by_floor(subs: list[_Compiled]) -> Floors:
    """``subs`` once per alert severity rank, each time only those whose ``min_severity`` that
    rank meets: the floor is the test that turns most candidates away (a bucket holds
    subscriptions of every floor), so an alert never gathers those it would fail. A rank that adds
    nobody shares the previous rank's tuple."""
    out: list[tuple[_Compiled, ...]] = []
    for r in _SEVERITY_RANKS:
        cur = tuple([c for c in subs if c.min_sev <= r])
        out.append(out[-1] if out and len(out[-1]) == len(cur) else cur)
    return tuple(out)


_NO_FLOORS: Floors = ((),) * len(_SEVERITY_RANKS)


class SubscriptionIndex:
    """Subscriptions filed by what can make them match; immutable, one per set version.

    Every bucket is kept by alert severity rank (:data:`Floors`): a candidate always meets its
    severity floor. :func:`match` still runs the whole predicate on each candidate."""

    def __init__(self, subscriptions: Iterable[Subscription], *, version: int = 0) -> None:
        self.version = version
        by_country: dict[str, list[_Compiled]] = {}
        by_name: dict[str, list[_Compiled]] = {}
        by_geonameid: dict[int, list[_Compiled]] = {}
        by_place_country: dict[str, list[_Compiled]] = {}
        by_cell: dict[tuple[int, int], list[_Compiled]] = {}
        wide_near: list[_Compiled] = []
        by_threat: dict[str, list[_Compiled]] = {}
        catch_all: list[_Compiled] = []
        self.size = 0
        for sub in subscriptions:
            if not sub.enabled:
                continue
            c = _Compiled(sub)
            self.size += 1
            if not c.has_location:
                if c.threats:
                    for t in c.threats:
                        by_threat.setdefault(t, []).append(c)
                else:
                    catch_all.append(c)
                continue
            for cc in c.countries:
                by_country.setdefault(cc, []).append(c)
            for p in c.places:
                if p.geonameid is not None:
                    by_geonameid.setdefault(p.geonameid, []).append(c)
                if p.name:
                    by_name.setdefault(p.norm, []).append(c)
                if p.country_code:
                    by_place_country.setdefault(p.country_code, []).append(c)
            if c.near is not None:
                cells = _circle_cells(*c.near)
                if cells is None:
                    wide_near.append(c)
                else:
                    for cell in cells:
                        by_cell.setdefault(cell, []).append(c)
        self.by_country = {k: _by_floor(v) for k, v in by_country.items()}
        self.by_name = {k: _by_floor(v) for k, v in by_name.items()}
        self.by_geonameid = {k: _by_floor(v) for k, v in by_geonameid.items()}
        self.by_place_country = {k: _by_floor(v) for k, v in by_place_country.items()}
        self.by_cell = {k: _by_floor(v) for k, v in by_cell.items()}
        self.by_threat = {k: _by_floor(v) for k, v in by_threat.items()}
        self.always = _by_floor(wide_near + catch_all)
        """The catch-all subscriptions and the ``near`` circles too wide to file by cell."""

    def __len__(self) -> int:
        return self.size

    def candidates(self, a: AlertFeatures) -> set[_Compiled]:
        """Every subscription that may match ``a`` and whose severity floor ``a`` meets."""
        r, none = a.severity_rank, _NO_FLOORS
        found: set[_Compiled] = set(self.always[r])
        for t in a.threat_set:
            found.update(self.by_threat.get(t, none)[r])
        for cc in a.countries:
            found.update(self.by_country.get(cc, none)[r])
        for loc in a.locations:
            found.update(self.by_name.get(loc.norm, none)[r])
            if loc.geonameid is not None:
                found.update(self.by_geonameid.get(loc.geonameid, none)[r])
            if loc.is_country:
                found.update(self.by_place_country.get(loc.country, none)[r])
            elif loc.lat is not None and loc.lon is not None:
                found.update(self.by_cell.get(_cell(loc.lat, loc.lon), none)[r])
        return found


def match(alert: AlertClassified, subscriptions: SubscriptionIndex, now: datetime) -> list[Match]:
    """The subscriptions ``alert`` should reach at ``now``, sorted by subscription id."""
    features = AlertFeatures.of(alert)
    today = now.date()
    out = []
    for c in subscriptions.candidates(features):
        m = c.evaluate(features, today)
        if m is not None:
            out.append(m)
    out.sort(key=_by_subscription_id)
    return out


def _by_subscription_id(m: Match) -> str:
    return m.compiled.sub_id


def match_one(alert: AlertClassified, subscription: Subscription, now: datetime) -> Match | None:
    """Evaluate one subscription without an index (the brute-force reference)."""
    if not subscription.enabled:
        return None
    return _Compiled(subscription).evaluate(AlertFeatures.of(alert), now.date())


def match_scan(alert: AlertClassified, subscriptions: Iterable[Subscription], now: datetime) -> list[Match]:
    """Brute-force :func:`match` over every subscription (reference for tests and tiny sets)."""
    features = AlertFeatures.of(alert)
    today = now.date()
    out = [m for s in subscriptions if s.enabled and (m := _Compiled(s).evaluate(features, today)) is not None]
    out.sort(key=lambda m: m.subscription.id)
    return out
