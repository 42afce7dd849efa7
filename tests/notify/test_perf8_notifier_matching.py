"""Matching's fast paths of perf8: haversine_km without math.radians calls (bit for bit the same
distance) and AlertFeatures.of's view of a shared (decoded) location by identity (the same features
as the view by value)."""

from __future__ import annotations

import json
import math
import random

from vigil_notify import matching
from vigil_notify.classified import LeanLocation, decode_classified
from vigil_notify.matching import AlertFeatures, haversine_km
from vigil_shared.events import AlertClassified

from .helpers import ISTANBUL, MOSCOW, MOSCOW_ID, SPB, make_alert


def _haversine_reference(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """haversine_km as it was (math.radians)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * matching.EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def test_haversine_is_bit_for_bit_the_reference() -> None:
    rnd = random.Random(20261126)
    special = [0.0, -0.0, 90.0, -90.0, 180.0, -180.0, 1e-300, 359.99999, 45.0]
    for n in range(200_000):
        if n < len(special) ** 2:
            lat1, lon1 = special[n % len(special)], special[n // len(special)]
            lat2, lon2 = -lat1, lon1 / 3
        else:
            lat1, lat2 = rnd.uniform(-90, 90), rnd.uniform(-90, 90)
            lon1, lon2 = rnd.uniform(-180, 180), rnd.uniform(-180, 180)
            if n % 3 == 0:  # nearby points (the near circles' case)
                lat2, lon2 = lat1 + rnd.uniform(-1, 1), lon1 + rnd.uniform(-1, 1)
        got, want = haversine_km(lat1, lon1, lat2, lon2), _haversine_reference(lat1, lon1, lat2, lon2)
        assert got == want or (math.isnan(got) and math.isnan(want)), (lat1, lon1, lat2, lon2)
        assert math.copysign(1.0, got) == math.copysign(1.0, want)


def _by_value(alert: AlertClassified) -> AlertFeatures:
    """AlertFeatures.of with every location looked up by value (no shared-location entries)."""
    saved = dict(matching._SHARED_LOCS)
    matching._SHARED_LOCS.clear()
    try:
        features = AlertFeatures.of(alert.full() if hasattr(alert, "full") else alert)
    finally:
        matching._SHARED_LOCS.update(saved)
    return features


def test_shared_locations_give_the_features_by_value() -> None:
    rnd = random.Random(7)
    places = [MOSCOW, SPB, ISTANBUL, MOSCOW_ID, {"name": "Null", "country_code": "XX", "latitude": 0.0,
                                                 "longitude": -0.0, "kind": "country"}]  # fmt: skip
    for n in range(300):
        locs = tuple(rnd.sample(places, rnd.randint(0, 4)))
        body = make_alert(alert_id=f"a-{n}", locations=locs).model_dump_json().encode()
        lean = decode_classified(body)
        assert all(type(loc) is LeanLocation for loc in lean.classification.locations)
        for _ in range(2):  # first by value (and filed), then by identity
            got = AlertFeatures.of(lean)
            assert got == _by_value(lean)
            assert [loc.name for loc in got.locations] == [loc.name for loc in lean.classification.locations]
        if n % 50 == 0:
            matching._SHARED_LOCS.clear()


def test_a_shared_entry_is_used_only_for_its_own_object() -> None:
    """An entry whose id is another object's (not possible while it holds its object, checked
    anyway) is not used: the location is looked up by value."""
    lean = decode_classified(make_alert(locations=(MOSCOW,)).model_dump_json().encode())
    loc = lean.classification.locations[0]
    AlertFeatures.of(lean)
    entry = matching._SHARED_LOCS[id(loc)]
    assert entry[0] is loc
    doc = json.loads(make_alert(locations=(SPB,)).model_dump_json())
    other = decode_classified(json.dumps(doc).encode())
    other_loc = other.classification.locations[0]
    matching._SHARED_LOCS[id(other_loc)] = entry  # a stale entry under the other object's id
    try:
        assert AlertFeatures.of(other).locations[0].name == "Saint Petersburg"
    finally:
        matching._SHARED_LOCS.clear()


def test_shared_locations_are_bounded() -> None:
    matching._SHARED_LOCS.clear()
    doc = json.loads(make_alert().model_dump_json())
    for start in range(0, matching._LOCS_MAX + 400, 400):
        doc["classification"]["locations"] = [
            {"name": f"p{i}", "country_code": "RU", "latitude": i / 1000, "longitude": 1.0}
            for i in range(start, start + 400)
        ]
        AlertFeatures.of(decode_classified(json.dumps(doc).encode()))
        assert len(matching._SHARED_LOCS) <= matching._LOCS_MAX
