"""``_merge_neighbourhoods`` and ``_drop_office_seats`` reading the places from the dict itself (session
8) drop and merge exactly what the former versions, with a separate list of keys, did."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

from vigil_classify import geoparse
from vigil_classify.engine import Classifier
from vigil_classify.gazetteer import Place
from vigil_classify.geoparse import EvidencePayload, _Found


def _former_merge(places: list[Place], found: dict[tuple[str, str], _Found], order: list[Any]) -> None:
    cities: list[Any] = []
    for k in order:
        f = found[k]
        if f.kind == "city" and places[f.place].latitude is not None:
            cities.append(k)
    if len(cities) < 2:
        return
    for k in list(cities):
        small = places[found[k].place]
        for other in cities:
            if other is k or other not in found:
                continue
            big = places[found[other].place]
            if big.country_code != small.country_code or big.population < 5 * max(small.population, 1):
                continue
            assert small.latitude is not None
            assert small.longitude is not None
            assert big.latitude is not None
            assert big.longitude is not None
            dlat = (small.latitude - big.latitude) * 111.0
            dlon = (small.longitude - big.longitude) * 111.0 * math.cos(math.radians(big.latitude))
            if dlat * dlat + dlon * dlon < 64.0:
                found[other].evidence.extend(found[k].evidence)
                del found[k]
                order.remove(k)
                break


def _former_drop(text: str, found: dict[tuple[str, str], _Found], order: list[Any]) -> None:
    scope: set[str] = set()
    for k in order:
        f = found[k]
        if f.kind == "country":
            for e in f.evidence:
                if geoparse._resident_before(text, e["start"]):
                    scope.add(k[1])
                    break
    if not scope:
        return
    for k in list(order):
        f = found[k]
        if f.kind != "country" and k[1] in scope and all(geoparse._office_seat(text, e["start"]) for e in f.evidence):
            del found[k]
            order.remove(k)


def _all(text: str, word: str) -> list[int]:
    out = []
    i = text.find(word)
    while i >= 0:
        out.append(i)
        i = text.find(word, i + 1)
    return out


def _state(found: dict[tuple[str, str], _Found]) -> list[Any]:
    return [(k, f.place, f.name, f.kind, f.confidence, f.evidence) for k, f in found.items()]


def test_merge_and_drop_as_before(classifier: Classifier) -> None:
    places = classifier.gazetteer.places
    rnd = random.Random(5)
    by_country: dict[str, list[int]] = {}
    for i, p in enumerate(places):
        by_country.setdefault(p.country_code, []).append(i)
    codes = sorted(c for c, ids in by_country.items() if len(ids) > 3)
    text = (
        "Citizens living in Japan can vote. The Embassy in Tokyo and the Consulate in Osaka will open. "
        "Residents based in France may visit the embassy in Paris. Lyon and Nice are calm. " * 3
    )
    # where a country is named as where the readers live, and where a city is named as an office's seat
    resident = [i + len(w) for w in ("living in ", "based in ") for i in _all(text, w)]
    seats = [i + len(w) for w in ("Embassy in ", "Consulate in ", "embassy in ") for i in _all(text, w)]
    merged = dropped = 0
    for _ in range(3000):
        code = rnd.choice(codes)
        ids = by_country[code] + rnd.sample(range(len(places)), 2)
        # places of one country (near each other often enough to merge), a few of another
        chosen = [rnd.choice(ids) for _ in range(rnd.randint(1, 7))]
        found: dict[tuple[str, str], _Found] = {}
        for n, idx in enumerate(chosen):
            p = places[idx]
            kind = p.kind if rnd.random() < 0.8 else rnd.choice(("city", "region", "country"))
            pool = resident if kind == "country" else seats
            starts = rnd.sample(pool if rnd.random() < 0.7 else range(len(text)), rnd.randint(1, 3))
            ev: list[EvidencePayload] = [{"text": "x", "start": s, "end": s + 1} for s in starts]
            found[(f"{p.name}{n % 3}", p.country_code)] = _Found(idx, p.name, kind, 0.5 + n / 100, ev)
        former = copy.deepcopy(found)
        order = list(former)
        if len(order) > 1:
            _former_merge(places, former, order)
        if len(order) > 1:
            _former_drop(text, former, order)
        before = len(found)
        if len(found) > 1:
            geoparse._merge_neighbourhoods(places, found)
        after_merge = len(found)
        if len(found) > 1:
            geoparse._drop_office_seats(text, found)
        assert _state(found) == _state(former)
        assert list(found) == order
        merged += before - after_merge
        dropped += after_merge - len(found)
    assert merged > 40
    assert dropped > 20
