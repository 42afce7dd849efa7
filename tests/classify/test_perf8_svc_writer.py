"""The classify service's compiled entry writer (``vigil_classify.writer.EntryWriter``) against the code it
replaces: ``service.classified_data`` (``_classified_json`` in ``encode_body``), ``Publication(...)``,
in ``encode_body``'s envelope, and orjson's writing of ``datetime.now(UTC)``. Same bytes (ids and times aside, which are
read back from the new bytes and given to the old path), same publications, same failures."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic_core import PydanticSerializationError
from vigil_classify import service
from vigil_classify.engine import Classifier
from vigil_classify.writer import EntryWriter
from vigil_shared.bench import _alert, make_texts
from vigil_shared.envelope import decode_body, encode_body
from vigil_shared.events import SCHEMA_VERSION, AlertClassified, AlertReceived, CapInfo
from vigil_shared.worker import Publication

OUT = "vigil.alerts.classified"
HOSTILE = (
    'Quotes " and \\ backslashes, tab\t, newline\n, control \x00\x01\x1f, DEL \x7f, \u2028 \u2029, é, Москва, '
    "😀, </script>, \ufeff\ufffe"
)


@pytest.fixture(scope="module")
def writer(classifier: Classifier) -> EntryWriter:
    w = service.entry_writer(classifier, OUT)
    assert w.own_publication  # Publication made by its slots (else by its __init__)
    return w


def _old_data(classifier: Classifier, alert: AlertReceived, data: bytes) -> bytes:
    """What the old path (``classified_data``) writes for ``alert`` with the id and time found in ``data``."""
    parsed = AlertClassified.model_validate_json(decode_body({b"__data__": data}))
    payload = service.alert_payload(classifier, alert)
    body = service._classified_json(
        parsed.event_id, parsed.occurred_at, SCHEMA_VERSION, alert.correlation_id, "classify", alert, payload
    )
    return encode_body(alert.correlation_id, AlertClassified.event_type, body)


def _from_json(alert: AlertReceived) -> AlertReceived:
    """The alert as the worker has it: validated from its JSON (pydantic's own UTC tzinfo)."""
    return AlertReceived.model_validate_json(alert.model_dump_json())


def _variants() -> list[AlertReceived]:
    offsets = (UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=30)))
    out: list[AlertReceived] = []
    for i, (title, text) in enumerate(make_texts(48, seed=5)):
        alert = _alert(i, title, text)
        update: dict[str, object] = {}
        if i % 2:
            tz = offsets[i % len(offsets)]
            moment = datetime(2026, 1, 2, 3, 4, 5, (i * 7919) % 1_000_000 if i % 3 else 0, tzinfo=tz)
            update |= {"published": moment, "occurred_at": moment if i % 5 else moment.replace(tzinfo=None)}
        if i % 4 == 1:
            update |= {"title": HOSTILE, "issuer": HOSTILE, "correlation_id": "é😀" + HOSTILE}
        if i % 6 == 2:
            update |= {"revision": 2**64 + i, "revision_of": "first"}  # orjson refuses: pydantic's path
        if i % 7 == 3:
            update |= {"extra": {"k": HOSTILE, "n": [1, 2.5, None, True], "nested": {"x": 1e-05}}}
        if i % 9 == 4:
            sent = datetime(2026, 1, 1, tzinfo=UTC)
            update |= {"cap": CapInfo(identifier="id", sender="s", sent=sent, urgency="Past")}
        copy = alert.model_copy(update=update)
        out.append(copy)
        if i % 3 == 0:
            out.append(AlertReceived.model_validate_json(copy.model_dump_json()))
    return out


def _check(classifier: Classifier, writer: EntryWriter, alerts: list[AlertReceived]) -> int:
    """Each outcome against the old path; returns how many alerts the writer wrote itself."""
    outcomes = writer.outcomes(alerts)
    assert len(outcomes) == len(alerts)
    own = 0
    for alert, outcome in zip(alerts, outcomes, strict=True):
        assert type(outcome) is tuple, outcome
        assert len(outcome) == 1
        (pub,) = outcome
        assert type(pub) is Publication
        assert pub == Publication(OUT, None, pub.data)
        assert pub.data == _old_data(classifier, alert, pub.data), alert
        if writer.usual(alert):
            own += 1
            assert service._orjson_writes_as_pydantic(alert)  # the writer's own alerts: a subset
    return own


def test_bench_alerts_same_bytes(classifier: Classifier, writer: EntryWriter) -> None:
    alerts = [_from_json(_alert(i, t, x)) for i, (t, x) in enumerate(make_texts(400))]
    assert _check(classifier, writer, alerts) == len(alerts)  # the bench's alerts: all the writer's


def test_odd_alerts_same_bytes(classifier: Classifier, writer: EntryWriter) -> None:
    alerts = _variants()
    own = _check(classifier, writer, alerts)
    assert 0 < own < len(alerts)  # both ways taken


def test_failures_as_before(classifier: Classifier, writer: EntryWriter) -> None:
    """An alert the old path cannot write (a lone surrogate: orjson and pydantic refuse it) is that
    alert's exception, of the same type; the others are written."""
    good = [_from_json(_alert(i, t, x)) for i, (t, x) in enumerate(make_texts(3))]
    bad = good[1].model_copy(update={"correlation_id": "x\ud800"})
    with pytest.raises(PydanticSerializationError) as old:  # (pydantic's JSON of the alert, after orjson's)
        service.classified_data(classifier, bad)
    # a lone surrogate in the text, within an evidence ("bomb" is a terrorism cue) and outside
    worse = [good[1].model_copy(update={"text": t}) for t in ("A bomb\ud800 attack in Paris.", "\udfff " + HOSTILE)]
    outcomes = writer.outcomes([good[0], bad, *worse, good[2]])
    assert type(outcomes[1]) is old.type
    assert str(outcomes[1]) == str(old.value)
    for alert, outcome in zip(worse, outcomes[2:4], strict=True):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the old path raises
            service.classified_data(classifier, alert)
        assert type(outcome) is raised.type
        assert str(outcome) == str(raised.value)
    outcomes = [outcomes[0], outcomes[-1]]
    for alert, outcome in ((good[0], outcomes[0]), (good[2], outcomes[1])):
        assert type(outcome) is tuple
        assert outcome[0].data == _old_data(classifier, alert, outcome[0].data)


def _orjson_time(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=ns // 1000 % 1_000_000)
    return orjson.dumps(moment, option=orjson.OPT_UTC_Z).decode()[1:-1]


def test_time_json_is_orjsons_datetime(writer: EntryWriter) -> None:
    rnd = random.Random(8)
    second = 1_795_000_000 * 10**9
    cases = [0, 999, 1000, 999_999_999, 10**9, second, second + 1000, second + 999_999_000, second + 999_999_999]
    cases += [rnd.randrange(0, 4_000_000_000 * 10**9) for _ in range(3000)]
    cases += [second + rnd.randrange(0, 3 * 10**9) for _ in range(3000)]  # runs within a few seconds
    for ns in cases:
        assert writer.time_json(ns) == _orjson_time(ns), ns


def test_now_json_is_now(writer: EntryWriter) -> None:
    before = datetime.now(UTC)
    got = datetime.fromisoformat(writer.now_json())
    assert before <= got <= datetime.now(UTC)


def _labels_both_ways(classifier: Classifier, title: str, text: str, issuer: str | None) -> None:
    ref = classifier.classify_payload(text, title=title, issuer=issuer, alert_id="a")
    got = classifier._payload(text, title, issuer, "a", None, None, None, True)
    assert type(got["threat_types"]) is orjson.Fragment
    assert type(got["targets"]) is orjson.Fragment
    assert orjson.dumps(got) == orjson.dumps(ref), (title, text)
    assert orjson.dumps(got["threat_types"]) == orjson.dumps(ref["threat_types"])
    assert orjson.dumps(got["targets"]) == orjson.dumps(ref["targets"])


def test_label_fragments_are_orjsons_lists(classifier: Classifier, fixture_texts: list[str]) -> None:
    """The labels' JSON text (``engine._scores_json``) is orjson's writing of ``_scores``' dicts: on the
    fixture corpus, the bench texts, hostile characters in the evidence and offsets past the small
    offsets' table."""
    for text in fixture_texts:
        for issuer in (None, "U.S. Embassy Moscow"):
            _labels_both_ways(classifier, "", text, issuer)
    for title, text in make_texts(300, seed=17):
        _labels_both_ways(classifier, title, text, "Benchmark Desk")
    rnd = random.Random(3)
    words = ["bomb", "attack", "protest", "hotel", "embassy", "kidnapping", "earthquake", "cholera", "Paris", "Kyiv"]
    odd = ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", " ", "  ", "\n\n"]
    for i in range(300):
        pieces = [rnd.choice(words) + rnd.choice(odd) for _ in range(rnd.randrange(3, 40))]
        text = "".join(pieces)
        if i % 10 == 0:
            text = "x" * rnd.choice((4000, 4090, 4096, 5000)) + " " + text  # offsets >= 4096
        _labels_both_ways(classifier, rnd.choice(("", "Security Alert: bomb attack", HOSTILE)), text, None)


def test_other_publication_class_by_its_init(classifier: Classifier) -> None:
    """A publication class whose slots are not ``Publication``'s three is made by its own ``__init__``."""
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class Other:
        stream: str
        event: object
        data: bytes | None = None
        extra: int = 7

    w2 = EntryWriter(
        classifier, OUT, Other, "classify", AlertClassified.event_type, service._PYDANTIC_UTC,
        service.payload_data, encode_body,
    )  # fmt: skip
    assert not w2.own_publication
    alert = _from_json(_alert(0, *make_texts(1)[0]))
    (pub,) = w2.outcomes([alert])[0]
    assert pub == Other(OUT, None, pub.data)
    assert pub.data == _old_data(classifier, alert, pub.data)
