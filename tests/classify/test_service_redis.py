"""The classify service through a real Redis: AlertReceived in on vigil.alerts.received, AlertClassified
out on vigil.alerts.classified, with the classifier's labels and the alert's correlation id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from vigil_classify.engine import Classifier
from vigil_classify.service import SERVICE, classified_data, validated_event
from vigil_shared import streams
from vigil_shared.envelope import DATA_FIELD, decode_body, decode_entry, encode_event_sync
from vigil_shared.events import AlertClassified, AlertReceived, CapInfo, parse_event
from vigil_shared.runtime import ServiceContext, make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, publish_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
async def classify_service(redis_url: str) -> AsyncIterator[Redis]:
    """classify as the runtime hosts it: its build(), its StreamWorker on a real broker."""
    settings = VigilSettings(
        redis_url=redis_url, consumer_name="classify-test", block_ms=50, claim_interval_s=0.2, claim_idle_ms=300
    )
    redis = Redis.from_url(redis_url)
    broker = make_broker(redis_url)
    parts = await SERVICE.build(ServiceContext(settings, redis, broker))
    assert [w.stream for w in parts.workers] == [streams.ALERTS_RECEIVED]
    for w in parts.workers:
        w.attach(broker)
        await w.prepare(redis)
    await broker.start()
    for w in parts.workers:
        await w.start_background(redis)
    try:
        yield redis
    finally:
        for w in parts.workers:
            await w.stop()
        await broker.stop()
        await redis.aclose()


async def classified(redis: Redis, n: int, within: float = 20.0) -> list[AlertClassified]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = await redis.xrange(streams.ALERTS_CLASSIFIED)
        if len(rows) >= n:
            return [parse_event(AlertClassified, decode_entry(f)[0]) for _, f in rows]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(rows)} of {n} AlertClassified events arrived")
        await asyncio.sleep(0.05)


def received(n: int, title: str, text: str, **extra: object) -> AlertReceived:
    return AlertReceived(
        correlation_id=f"corr-{n}",
        producer="test",
        alert_id=f"al_{n}",
        source_kind="api",
        source_name="test",
        issuer="U.S. Embassy Moscow",
        title=title,
        text=text,
        **extra,  # type: ignore[arg-type]
    )


async def test_alert_received_becomes_alert_classified_with_labels(classify_service: Redis) -> None:
    redis = classify_service
    threat = received(
        1,
        "Security Alert: Threats to crowded places in Moscow",
        "Location: Moscow, Russia. Event: Extremists continue to plan attacks against shopping malls and "
        "railway and metro stations, and the Embassy has received reports of specific threats.",
    )
    routine = received(
        2,
        "Embassy closure",
        "The Embassy will be closed on Monday for a federal holiday; routine passport services resume on Tuesday.",
    )
    quake = received(
        3,
        "Earthquake in Hatay",
        "A magnitude 7.8 earthquake struck Hatay, Gaziantep and Kahramanmaras provinces in Turkey "
        "early this morning; buildings collapsed.",
        cap=CapInfo(identifier="q1", sender="s@example.org", sent="2026-01-01T00:00:00Z", urgency="Expected"),
    )
    await publish_events(redis, [Publication(streams.ALERTS_RECEIVED, e) for e in (threat, routine, quake)])

    events = {e.alert.alert_id: e for e in await classified(redis, 3)}
    assert set(events) == {"al_1", "al_2", "al_3"}
    for n, src in enumerate((threat, routine, quake), start=1):
        out = events[f"al_{n}"]
        assert out.correlation_id == src.correlation_id == f"corr-{n}"
        assert out.producer == "classify"
        assert out.alert == src
        assert out.classification.id == src.alert_id

    c1 = events["al_1"].classification
    assert c1.is_threat
    assert [t.type for t in c1.threat_types] == ["terrorism"]
    assert {"shopping_centers", "transport_hubs"} <= {t.type for t in c1.targets}
    assert c1.countries == ("RU",)
    assert [(p.name, p.country_code) for p in c1.locations] == [("Moscow", "RU")]
    full = f"{threat.title}\n\n{threat.text}"
    for label in (*c1.threat_types, *c1.targets, *c1.locations):
        for ev in label.evidence:
            assert full[ev.start : ev.end] == ev.text

    c2 = events["al_2"].classification
    assert not c2.is_threat
    assert c2.threat_types == ()
    assert c2.urgency == "Unknown"

    c3 = events["al_3"].classification
    assert [t.type for t in c3.threat_types] == ["natural_disaster"]
    assert c3.countries == ("TR",)
    assert c3.urgency == "Expected"  # the source's CAP value wins over the text's "struck"
    assert c3.severity == "Extreme"

    # Everything consumed was acknowledged: nothing left pending for the classify group.
    pending = await redis.xpending(streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY)
    assert pending["pending"] == 0


HOSTILE = 'Quotes " and \\ backslashes, tab\t, control \x01, \u2028, é, Москва, 😀, </script>'


def contract_alerts(dev_received: list[AlertReceived]) -> list[AlertReceived]:
    """The dev fixture's alerts (some with CAP values, non-ASCII correlation ids) and a hostile one."""
    alerts = list(dev_received)
    alerts.append(
        received(999, "Protests in Moscow " + HOSTILE, "Demonstrations near the metro in Moscow turned violent. "
                 + HOSTILE, extra={"k": HOSTILE, "n": [1, 2.5, None, True], "nested": {"x": 1e-05}})
    )  # fmt: skip
    return alerts


def reference_fields(classifier: Classifier, alert: AlertReceived, published: AlertClassified) -> dict[bytes, bytes]:
    """The entry of the fully validated event of ``alert``, with the published event's fresh ids."""
    ref = validated_event(classifier, alert).model_copy(
        update={"event_id": published.event_id, "occurred_at": published.occurred_at}
    )
    return encode_event_sync(ref)


def test_classified_data_is_the_validated_events_entry(dev_received: list[AlertReceived]) -> None:
    classifier = Classifier()
    for alert in contract_alerts(dev_received):
        data = classified_data(classifier, alert)
        published = AlertClassified.model_validate_json(decode_body({DATA_FIELD: data}))
        assert type(published) is AlertClassified
        assert {DATA_FIELD: data} == reference_fields(classifier, alert, published), alert.alert_id


async def test_published_entries_are_the_validated_events_bytes(
    classify_service: Redis, dev_received: list[AlertReceived]
) -> None:
    """What the service writes to the stream (its own path, without event objects) is byte for byte
    the entry of the validated ``AlertClassified`` (apart from the fresh event id and time)."""
    redis = classify_service
    alerts = contract_alerts(dev_received)
    await publish_events(redis, [Publication(streams.ALERTS_RECEIVED, a) for a in alerts])
    deadline = asyncio.get_running_loop().time() + 20
    while await redis.xlen(streams.ALERTS_CLASSIFIED) < len(alerts):
        assert asyncio.get_running_loop().time() < deadline, "not every alert was classified in time"
        await asyncio.sleep(0.05)
    by_id = {a.alert_id: a for a in alerts}
    classifier = Classifier()
    rows = await redis.xrange(streams.ALERTS_CLASSIFIED)
    assert len(rows) == len(alerts)
    for _, fields in rows:
        published = AlertClassified.model_validate_json(decode_body(fields))
        alert = by_id[published.alert.alert_id]
        assert published.alert == alert
        assert fields == reference_fields(classifier, alert, published), alert.alert_id
