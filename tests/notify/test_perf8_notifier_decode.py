"""notify's decode with shared labels and locations (classified._interned_values): the same
acceptance and the same values as the per-alert lean decode it replaces (the lean model nodes, each
label and location a new object), on real alerts and on random faulty ones; refusals keep the
contract's reasons."""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from vigil_notify import classified
from vigil_notify.classified import (
    VALUES_INTERNED_MAX,
    LeanAlertClassified,
    LeanLabelScore,
    LeanLocation,
    build_validator,
    decode_classified,
)
from vigil_shared.events import AlertClassified, Evidence, InvalidEvent, LabelScore, parse_event

from .helpers import ISTANBUL, MOSCOW, MOSCOW_ID, SPB, make_alert

# the decode before this change: the lean model nodes (evidence interned, labels and locations not)
_REFERENCE = build_validator(classified._interned_evidence(classified._LEAN_SCHEMA))


def _reference(body: bytes) -> Any:
    return _REFERENCE.validate_json(body)


def _same(a: Any, b: Any, where: str = "") -> None:
    """``a`` and ``b`` hold the same values: same types, for models the same field dicts (in order)
    and fields sets, floats equal (NaN to NaN)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, BaseModel):
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.model_fields_set == b.model_fields_set, where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        for k in a.__dict__:
            _same(a.__dict__[k], b.__dict__[k], f"{where}.{k}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, (where, a, b)


def _outcome(body: bytes) -> tuple[Any, Any]:
    """(new, reference): each the decoded alert, or the exception type it raised."""
    results = []
    for validate in (classified._validate_json, _reference):
        try:
            results.append(validate(body))
        except ValidationError:
            results.append(ValidationError)
    return results[0], results[1]


def _check(body: bytes) -> None:
    new, ref = _outcome(body)
    if ref is ValidationError or new is ValidationError:
        assert new is ref, body
        return
    _same(new, ref)
    # the service's parse hook: the same alert, the entry's exact body as its JSON
    lean = decode_classified(body)
    assert type(lean) is LeanAlertClassified
    _same(lean, ref)
    assert lean.model_dump_json() == body.decode()


def _bodies() -> list[bytes]:
    alerts = [
        make_alert(),
        make_alert(alert_id="a-2", locations=(MOSCOW, SPB, ISTANBUL, MOSCOW_ID), threats=("terrorism", "crime")),
        make_alert(alert_id="a-3", locations=(), countries=("FR",), threats=(), targets=(), is_threat=False),
        make_alert(
            alert_id="a-4",
            locations=(
                {"name": "Null Island", "country_code": "XX", "latitude": 0.0, "longitude": -0.0, "kind": "region"},
            ),
        ),
    ]
    ev = tuple(Evidence(text=t, start=i, end=i + 1) for i, t in enumerate(["bomb", "mall", "bomb", "", "metro"]))
    rich = alerts[1]
    c = rich.classification
    rich = rich.model_copy(update={"classification": c.model_copy(update={
        "threat_types": tuple(lab.model_copy(update={"evidence": ev}) for lab in c.threat_types),
        "targets": (LabelScore(type="hotels", confidence=0.5, evidence=(*ev[::-1], ev[0])),),
        "locations": tuple(loc.model_copy(update={"evidence": ev[:2]}) for loc in c.locations),
    })})  # fmt: skip
    return [a.model_dump_json().encode() for a in (*alerts, rich)]


@pytest.mark.parametrize("body", _bodies())
def test_the_same_values_as_the_lean_model_nodes(body: bytes) -> None:
    _check(body)
    one, two = decode_classified(body), decode_classified(body)
    c1, c2 = one.classification, two.classification
    # shared: the same objects from one alert to the next
    assert all(a is b for a, b in zip(c1.threat_types + c1.targets, c2.threat_types + c2.targets, strict=True))
    assert all(a is b for a, b in zip(c1.locations, c2.locations, strict=True))
    assert all(type(x) is LeanLabelScore for x in c1.threat_types + c1.targets)
    assert all(type(x) is LeanLocation for x in c1.locations)


def test_omitted_optional_fields_stay_out_of_the_fields_set() -> None:
    """A field left out and the same field given its default are different keys: each object has the
    fields set the lean node gave it."""
    doc = json.loads(make_alert(threats=("crime",)).model_dump_json())
    loc = {"name": "Moscow", "country_code": "RU"}
    lab = {"type": "crime", "confidence": 0.5}
    for loc_doc, lab_doc in (
        (loc, lab),
        ({**loc, "geonameid": None, "latitude": None, "longitude": None, "kind": "city", "admin1": None},
         {**lab, "evidence": []}),
        (loc, lab),
    ):  # fmt: skip
        doc["classification"]["locations"] = [loc_doc]
        doc["classification"]["threat_types"] = [lab_doc]
        body = json.dumps(doc).encode()
        _check(body)
        got = decode_classified(body).classification
        assert got.locations[0].model_fields_set == set(loc_doc)
        assert got.threat_types[0].model_fields_set == set(lab_doc) - {"confidence"}


def test_evidence_shared_across_labels_is_the_interned_evidence() -> None:
    """One evidence object per text, in the shared labels too, also after the evidence interning
    started afresh (which empties the label and location caches with it)."""
    body = _bodies()[-1]
    for _ in range(2):
        got = decode_classified(body).classification
        quoted = [e for lab in (*got.threat_types, *got.targets) for e in lab.evidence]
        assert all(e is classified._EVIDENCE[e.text] for e in quoted)
        doc = json.loads(body)  # as many new texts as the evidence interning keeps: it starts afresh
        texts = [f"fresh {i}" for i in range(classified.EVIDENCE_INTERNED_MAX + 1)]
        doc["classification"]["targets"] = [{"type": "t", "confidence": 0.5, "evidence": [{"text": t} for t in texts]}]
        decode_classified(json.dumps(doc).encode())
        assert all(fn.cache_info().currsize <= 8 for fn in _interned_functions())  # that alert's only


_POOL: list[Any] = [
    None, True, 0, 1, -1, 2**70, 1.5, -0.0, 0.0, 1e308, "", "x", "city", "country", "Moscow", "RU", [], {},
    [1], ["bomb"], [{"text": "bomb"}], [{"text": 1}], [{"text": "bomb", "start": -1}], {"text": "bomb"},
    [{"text": "bomb"}, {"text": "mall", "surprise": []}], [{}], [None],
]  # fmt: skip


def _pick(rnd: random.Random) -> Any:
    return copy.deepcopy(rnd.choice(_POOL))


def _mutate(doc: dict[str, Any], rnd: random.Random) -> None:
    """One random change inside a label, a location or an evidence of ``doc``'s classification."""
    c = doc["classification"]
    part = rnd.choice(["threat_types", "targets", "locations"])
    items = c[part]
    if not isinstance(items, list) or not items or rnd.random() < 0.1:
        c[part] = _pick(rnd) if rnd.random() < 0.3 else [_pick(rnd)]
        return
    i = rnd.randrange(len(items))
    node = items[i]
    if not isinstance(node, dict):
        items[i] = _pick(rnd)
        return
    evs = node.get("evidence")
    if isinstance(evs, list) and evs and rnd.random() < 0.4:
        j = rnd.randrange(len(evs))
        if isinstance(evs[j], dict) and rnd.random() < 0.7:
            key = rnd.choice(["text", "start", "end", "surprise"])
            if rnd.random() < 0.3:
                evs[j].pop(key, None)
            else:
                evs[j][key] = _pick(rnd)
        else:
            evs[j] = _pick(rnd)
        return
    keys = (
        ["type", "confidence", "evidence"]
        if part != "locations"
        else ["name", "country_code", "geonameid", "latitude", "longitude", "kind", "confidence", "evidence", "admin1"]
    )
    key = rnd.choice([*keys, "surprise"])
    r = rnd.random()
    if r < 0.25:
        node.pop(key, None)
    elif r < 0.35:
        items.append(copy.deepcopy(node))  # the same value twice in one alert
    else:
        node[key] = _pick(rnd)


def test_random_faulty_alerts_are_accepted_and_refused_alike() -> None:
    rnd = random.Random(20261126)
    docs = [json.loads(b) for b in _bodies()]
    accepted = refused = 0
    for n in range(3000):
        doc = copy.deepcopy(rnd.choice(docs))
        for _ in range(rnd.randint(1, 3)):
            _mutate(doc, rnd)
        body = json.dumps(doc).encode()
        _check(body)
        new, _ = _outcome(body)
        accepted, refused = (accepted + 1, refused) if new is not ValidationError else (accepted, refused + 1)
        if new is ValidationError and n % 10 == 0:  # the contract's reasons (its own validator's)
            with pytest.raises(InvalidEvent) as reference:
                parse_event(AlertClassified, body)
            with pytest.raises(InvalidEvent) as info:
                decode_classified(body)
            assert str(info.value) == str(reference.value)
    assert accepted > 300, (accepted, refused)
    assert refused > 300, (accepted, refused)


@pytest.mark.parametrize(
    "raw",
    [
        # duplicate keys (the last one counts, as in the model node), arrays for objects, odd numbers
        b'{"type": "crime", "type": "terrorism", "confidence": 0.5}',
        b'{"type": "crime", "evidence": [{"text": "a", "text": "b"}]}',
        b'{"type": "crime", "evidence": [["bomb"]]}',
        b'["crime"]',
        b'{"type": "crime", "evidence": {"text": "bomb"}}',
        b'{"type": "crime", "evidence": null}',
        b'{"type": "crime", "evidence": [{"text": "bomb"}], "evidence": []}',
    ],
)
def test_odd_labels_alike(raw: bytes) -> None:
    body = _bodies()[0]
    head, sep, tail = body.partition(b'"threat_types":[')
    assert sep
    depth, end = 0, 0
    for k, ch in enumerate(tail):  # the first label's object
        depth += ch == ord("{")
        depth -= ch == ord("}")
        if depth == 0:
            end = k + 1
            break
    _check(head + sep + raw + tail[end:])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Moscow", "name": "Paris", "country_code": "FR"}',
        b'{"name": "Moscow", "country_code": "RU", "latitude": NaN, "longitude": 1}',
        b'{"name": "Moscow", "country_code": "RU", "latitude": "55.7", "longitude": 1}',
        b'{"name": "Moscow", "country_code": "RU", "geonameid": 524901.0}',
        b'{"name": "Moscow", "country_code": "RU", "geonameid": 524901.5}',
        b'{"name": "Moscow", "country_code": "RU", "geonameid": "524901"}',
        b'{"name": "Moscow", "country_code": "RU", "latitude": -0.0, "longitude": 0}',
        b'{"name": "Moscow", "country_code": "RU", "latitude": 0, "longitude": -0.0}',
        b'{"name": "Moscow", "country_code": "RU", "kind": "planet"}',
        b'{"name": "Moscow", "country_code": "RU", "evidence": 7, "confidence": "x"}',
        b'["Moscow", "RU"]',
    ],
)
def test_odd_locations_alike(raw: bytes) -> None:
    body = _bodies()[0]
    head, sep, tail = body.partition(b'"locations":[')
    assert sep, body
    _check(head + sep + raw + b"," + tail)
    _check(head + sep + raw + b"," + raw + b"," + tail)


def test_the_caches_are_bounded() -> None:
    doc = json.loads(_bodies()[0])
    for start in range(0, VALUES_INTERNED_MAX + 600, 300):
        doc["classification"]["locations"] = [
            {"name": f"place {i}", "country_code": "RU", "latitude": i / 7} for i in range(start, start + 300)
        ]
        doc["classification"]["targets"] = [{"type": f"t{i}", "confidence": 0.5} for i in range(start, start + 300)]
        body = json.dumps(doc).encode()
        _check(body)
    caches = _interned_functions()
    assert len(caches) == 2
    assert all(fn.cache_info().currsize <= VALUES_INTERNED_MAX for fn in caches)


def _interned_functions() -> list[Any]:
    """The lru caches the lean validator calls (found in its schema)."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            fn = node.get("function")
            if node.get("type") == "call" and hasattr(fn, "cache_info"):
                found.append(fn)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(classified._LEAN_INTERNED_SCHEMA)
    return found
