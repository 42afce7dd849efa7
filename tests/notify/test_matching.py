from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vigil_notify.matching import SubscriptionIndex, haversine_km, match, match_one, match_scan
from vigil_notify.subscriptions import normalise_place
from vigil_shared.events import SEVERITIES, TARGET_TYPES, THREAT_TYPES, URGENCIES

from .helpers import ISTANBUL, MOSCOW, MOSCOW_ID, NOW, SPB, make_alert, make_sub

TRAVELLER = make_sub("moscow-traveller", places=["Moscow, RU"], active={"from": "2026-06-01", "until": "2027-06-30"})
NEAR_MOSCOW = make_sub("near-moscow", near={"lat": 55.75, "lon": 37.62, "radius_km": 100})
SPB_ONLY = make_sub("spb-only", places=["St. Petersburg"])
MOSCOW_IDAHO = make_sub("moscow-idaho", near={"lat": 46.73, "lon": -117.0, "radius_km": 50})
EXPIRED = make_sub("expired-trip", places=["Moscow"], active={"from": "2025-01-01", "until": "2025-03-01"})
NATURAL_ONLY = make_sub("natural-only", threat_types=["natural_disaster"])
DESK = make_sub("security-desk")
RU_SEVERE = make_sub("ru-extreme-only", countries=["RU"], min_severity="Extreme")
ISTANBUL_BIZ = make_sub("istanbul", places=[745044])
ALL = [TRAVELLER, NEAR_MOSCOW, SPB_ONLY, MOSCOW_IDAHO, EXPIRED, NATURAL_ONLY, DESK, RU_SEVERE, ISTANBUL_BIZ]


def ids(matches) -> set[str]:
    return {m.subscription.id for m in matches}


@pytest.mark.parametrize(
    ("sub", "expected"),
    [
        (TRAVELLER, True),
        (NEAR_MOSCOW, True),
        (SPB_ONLY, False),
        (MOSCOW_IDAHO, False),
        (EXPIRED, False),
        (NATURAL_ONLY, False),
        (DESK, True),
        (RU_SEVERE, False),
        (ISTANBUL_BIZ, False),
    ],
    ids=lambda v: v.id if hasattr(v, "id") else str(v),
)
def test_moscow_alert_table(sub, expected) -> None:
    alert = make_alert()
    assert (match_one(alert, sub, NOW) is not None) is expected
    assert (sub.id in ids(match(alert, SubscriptionIndex(ALL), NOW))) is expected


def test_index_and_scan_agree_on_examples() -> None:
    index = SubscriptionIndex(ALL)
    for alert in (
        make_alert(),
        make_alert(locations=(SPB,)),
        make_alert(locations=(MOSCOW_ID,)),
        make_alert(locations=(ISTANBUL,), threats=("civil_unrest",)),
        make_alert(threats=("natural_disaster",), locations=(MOSCOW, SPB)),
    ):
        assert ids(match(alert, index, NOW)) == ids(match_scan(alert, ALL, NOW))


def test_explanation_names_place_threat_and_severity() -> None:
    sub = make_sub(
        "x",
        near={"lat": 55.75, "lon": 37.62, "radius_km": 25},
        threat_types=["terrorism"],
        min_severity="Moderate",
    )
    (m,) = match(make_alert(), SubscriptionIndex([sub]), NOW)
    assert m.explanation == (
        "matched: place Moscow, RU within 25 km (1 km away); threat terrorism; severity Severe >= Moderate"
    )


@pytest.mark.parametrize(
    ("active", "spelled"),
    [({"from": "2026-11-01", "until": "2026-12-01"}, "active 2026-11-01..2026-12-01"),
     ({"from": "2026-11-01"}, "active 2026-11-01..…"), ({"until": "2026-12-01"}, "active …..2026-12-01")],
)  # fmt: skip
def test_explanation_names_the_urgency_floor_and_the_trip_window(active: dict[str, str], spelled: str) -> None:
    sub = make_sub("x", countries=["RU"], min_urgency="Future", active=active)
    (m,) = match(make_alert(), SubscriptionIndex([sub]), NOW)
    assert m.explanation == (
        "matched: country RU; threat terrorism (any threat); severity Severe >= Unknown; urgency Expected >= Future; "
        + spelled
    )


def test_moscow_idaho_alert_does_not_reach_moscow_russia_near_subscriber() -> None:
    alert = make_alert(locations=(MOSCOW_ID,))
    got = ids(match(alert, SubscriptionIndex(ALL), NOW))
    assert "moscow-idaho" in got
    assert "near-moscow" not in got
    assert "moscow-traveller" not in got  # "Moscow, RU" checks the country


def test_spb_subscriber_gets_spb_alert_and_name_variants_match() -> None:
    got = ids(match(make_alert(locations=(SPB,)), SubscriptionIndex(ALL), NOW))
    assert "spb-only" in got
    assert "moscow-traveller" not in got


def test_trip_window_not_started_yet() -> None:
    future = make_sub("future", places=["Moscow"], active={"from": "2027-01-01"})
    assert match_one(make_alert(), future, NOW) is None
    assert match_one(make_alert(), future, datetime(2027, 1, 1, tzinfo=UTC)) is not None


def test_non_threat_messages_only_when_asked() -> None:
    alert = make_alert(is_threat=False, threats=(), targets=(), severity="Minor")
    assert match_one(alert, DESK, NOW) is None
    m = match_one(alert, make_sub("all", include_non_threats=True), NOW)
    assert m is not None
    assert "non-threat" in m.explanation


def test_country_wide_alert_covers_place_with_country() -> None:
    russia = {"name": "Russia", "country_code": "RU", "kind": "country", "latitude": 61.5, "longitude": 105.3}
    alert = make_alert(locations=(russia,))
    assert match_one(alert, TRAVELLER, NOW) is not None
    assert match_one(alert, NEAR_MOSCOW, NOW) is None  # a country centroid is not a point in a circle
    assert match_one(alert, SPB_ONLY, NOW) is None  # no country given with the place


def test_target_and_urgency_filters() -> None:
    hotels = make_sub("hotels", target_types=["hotels"])
    assert match_one(make_alert(), hotels, NOW) is None
    assert match_one(make_alert(targets=("hotels",)), hotels, NOW) is not None
    urgent = make_sub("urgent", min_urgency="Immediate")
    assert match_one(make_alert(urgency="Expected"), urgent, NOW) is None
    assert match_one(make_alert(urgency="Immediate"), urgent, NOW) is not None


def test_disabled_subscription_never_matches() -> None:
    sub = DESK.model_copy(update={"enabled": False})
    assert match(make_alert(), SubscriptionIndex([sub]), NOW) == []


def test_haversine_known_distance() -> None:
    assert 630 < haversine_km(55.7558, 37.6173, 59.9386, 30.3141) < 640  # Moscow - St Petersburg


# ------------------------------------------------------------------ property: index == brute force

lat = st.floats(min_value=-85, max_value=85, allow_nan=False)
lon = st.floats(min_value=-180, max_value=180, allow_nan=False)
CCS = ["RU", "TR", "US", "FR"]
NAMES = ["Moscow", "Saint Petersburg", "Istanbul", "Paris"]


@st.composite
def subscriptions(draw, i: int = 0):
    f: dict = {}
    if draw(st.booleans()):
        f["countries"] = draw(st.lists(st.sampled_from(CCS), max_size=2))
    if draw(st.booleans()):
        f["places"] = draw(st.lists(st.one_of(
            st.sampled_from(NAMES),
            st.sampled_from([f"{n}, {c}" for n in NAMES for c in CCS]),
            st.integers(1, 5)), max_size=2))  # fmt: skip
    if draw(st.booleans()):
        f["near"] = {"lat": draw(lat), "lon": draw(lon), "radius_km": draw(st.floats(1, 3000))}
    if draw(st.booleans()):
        f["threat_types"] = draw(st.lists(st.sampled_from(THREAT_TYPES), max_size=2))
    if draw(st.booleans()):
        f["target_types"] = draw(st.lists(st.sampled_from(TARGET_TYPES[:3]), max_size=2))
    f["min_severity"] = draw(st.sampled_from(SEVERITIES))
    f["include_non_threats"] = draw(st.booleans())
    if draw(st.booleans()):
        f["active"] = {"from": "2026-01-01", "until": draw(st.sampled_from(["2026-06-01", "2027-01-01"]))}
    return make_sub(f"s{draw(st.integers(0, 10**9))}", **f)


@st.composite
def alerts(draw):
    locs = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["city", "region", "country"]))
        has_coords = draw(st.booleans())
        locs.append({
            "name": draw(st.sampled_from(NAMES)), "country_code": draw(st.sampled_from(CCS)),
            "geonameid": draw(st.one_of(st.none(), st.integers(1, 5))), "kind": kind,
            "latitude": draw(lat) if has_coords else None, "longitude": draw(lon) if has_coords else None,
        })  # fmt: skip
    return make_alert(
        locations=tuple(locs),
        countries=tuple(draw(st.lists(st.sampled_from(CCS), max_size=2))),
        threats=tuple(draw(st.lists(st.sampled_from(THREAT_TYPES), max_size=2, unique=True))),
        targets=tuple(draw(st.lists(st.sampled_from(TARGET_TYPES[:3]), max_size=2, unique=True))),
        severity=draw(st.sampled_from(SEVERITIES)),
        urgency=draw(st.sampled_from(URGENCIES)),
        is_threat=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subs=st.lists(subscriptions(), max_size=25, unique_by=lambda s: s.id), alert=alerts())
def test_index_equals_brute_force(subs, alert) -> None:
    indexed = match(alert, SubscriptionIndex(subs), NOW)
    scanned = match_scan(alert, subs, NOW)
    assert [(m.subscription.id, m.reasons) for m in indexed] == [(m.subscription.id, m.reasons) for m in scanned]


@settings(max_examples=300, deadline=None)
@given(lat0=lat, lon0=lon, radius=st.floats(1, 3000), lat1=lat, lon1=lon)
def test_near_circle_index_never_misses(lat0, lon0, radius, lat1, lon1) -> None:
    sub = make_sub("n", near={"lat": lat0, "lon": lon0, "radius_km": radius})
    alert = make_alert(locations=({"name": "X", "country_code": "US", "latitude": lat1, "longitude": lon1},))
    inside = haversine_km(lat0, lon0, lat1, lon1) <= radius
    assert bool(match(alert, SubscriptionIndex([sub]), NOW)) is inside


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subs=st.lists(subscriptions(), max_size=25, unique_by=lambda s: s.id), alert=alerts())
def test_index_candidates_meet_their_severity_floor_and_miss_no_match(subs, alert) -> None:
    from vigil_notify.matching import AlertFeatures

    features = AlertFeatures.of(alert)
    found = SubscriptionIndex(subs).candidates(features)
    assert all(features.severity_rank >= c.min_sev for c in found)
    assert {m.subscription.id for m in match_scan(alert, subs, NOW)} <= {c.sub.id for c in found}


def test_location_views_are_cached_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matching view of a location is shared by the alerts naming the same place, and the cache
    of them is emptied when full (it never grows past its bound)."""
    from vigil_notify import matching

    monkeypatch.setattr(matching, "_LOCS", {})
    key = ("Moscow", "ru", 524901, 55.75, 37.62, "city")
    one = matching._loc(key)
    assert matching._loc(key) is one
    assert (one.name, one.country, one.norm, one.is_country) == ("Moscow", "RU", normalise_place("Moscow"), False)
    monkeypatch.setattr(matching, "_LOCS_MAX", 2)
    for i in range(5):
        matching._loc((f"Town {i}", "fr", None, 1.0, 2.0, "country"))
        assert len(matching._LOCS) <= 2


def test_a_match_carries_the_subscriptions_own_values() -> None:
    sub = make_sub("q", countries=["RU"], quiet_hours={"start": "22:00", "end": "07:00", "tz": "Europe/Moscow"})
    m = match_one(make_alert(), sub, datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert m is not None
    c = m.compiled
    assert (c.sub, c.sub_id, c.sub_name, c.sub_channels, c.quiet_hours) == (
        sub,
        sub.id,
        sub.name,
        sub.channels,
        sub.filter.quiet_hours,
    )
