"""capfeed through a real Redis: the service's own build() consuming vigil.alerts.classified as group
``capfeed``, then its HTTP routes. CAP documents are validated against tests/capfeed/cap12.xsd — a
CAP 1.2 schema written from the OASIS specification for these tests (not the official file, which
could not be downloaded) — plus explicit checks of what the schema does not say (references syntax).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from redis.asyncio import Redis
from vigil_capfeed.service import GROUP, SERVICE
from vigil_capfeed.store import INDEX, AlertStore
from vigil_shared import streams
from vigil_shared.events import (
    AlertClassified,
    AlertReceived,
    CapArea,
    CapInfo,
    Classification,
    LabelScore,
    Location,
)
from vigil_shared.health import build_http_app
from vigil_shared.runtime import ServiceContext, make_broker
from vigil_shared.settings import VigilSettings
from vigil_shared.worker import Publication, publish_events

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("cap12.xsd"))))
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def classified(
    alert_id: str,
    *,
    revision: int = 1,
    countries: tuple[str, ...] = ("RU",),
    types: tuple[str, ...] = ("terrorism",),
    is_threat: bool = True,
    text: str = "Explosion reported near the metro station; avoid the area.",
    cap: CapInfo | None = None,
    minutes: int = 0,
) -> AlertClassified:
    alert = AlertReceived(
        correlation_id=f"corr-{alert_id}",
        producer="ingest",
        alert_id=alert_id,
        revision=revision,
        revision_of=alert_id if revision > 1 else None,
        source_kind="cap" if cap else "rss",
        source_name="embassy",
        issuer="US Embassy Moscow",
        title=f"Security alert {alert_id} r{revision}",
        text=text,
        url=f"https://example.org/{alert_id}",
        language="en",
        cap=cap,
        occurred_at=T0 + timedelta(minutes=minutes + revision),
    )
    cls = Classification(
        id=alert_id,
        is_threat=is_threat,
        threat_types=tuple(LabelScore(type=t, confidence=0.9) for t in types),
        targets=(LabelScore(type="transport_hubs", confidence=0.7),),
        locations=tuple(
            Location(
                name="Moscow" if c == "RU" else c,
                country_code=c,
                latitude=55.75,
                longitude=37.62,
                geonameid=524901 if c == "RU" else None,
            )
            for c in countries
        ),
        countries=countries,
        urgency="Immediate",
        severity="Severe",
        certainty="Likely",
        classifier_version="test-1",
    )
    return AlertClassified(
        correlation_id=alert.correlation_id, producer="classify", alert=alert, classification=cls
    )


def validate_cap(xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    SCHEMA.assertValid(doc)
    return doc


def text(doc: etree._Element, path: str) -> str | None:
    el = doc.find(path)
    return None if el is None else el.text


@pytest.fixture
async def capfeed(redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Redis, AlertStore]]:
    """capfeed as the runtime hosts it: its build(), its worker on a real broker, its routes."""
    settings = VigilSettings(
        redis_url=redis_url,
        consumer_name="capfeed-test",
        block_ms=50,
        claim_interval_s=0.2,
        claim_idle_ms=300,
    )
    redis = Redis.from_url(redis_url)
    broker = make_broker(redis_url)
    parts = await SERVICE.build(ServiceContext(settings, redis, broker))
    for w in parts.workers:
        w.attach(broker)
        await w.prepare(redis)
    await broker.start()
    for w in parts.workers:
        await w.start_background(redis)
    app = build_http_app(
        title="capfeed", routers=parts.routers, redis=redis, workers=parts.workers, background=[]
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capfeed.test")
    try:
        yield client, redis, AlertStore(redis)
    finally:
        await client.aclose()
        for w in parts.workers:
            await w.stop()
        await broker.stop()
        await redis.aclose()


async def wait_for(cond: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def publish(redis: Redis, *events: AlertClassified) -> None:
    await publish_events(redis, [Publication(streams.ALERTS_CLASSIFIED, e) for e in events], 10_000)


async def drained(redis: Redis) -> bool:
    groups = await redis.xinfo_groups(streams.ALERTS_CLASSIFIED)
    g = next(g for g in groups if g["name"] in (GROUP, GROUP.encode()))
    return int(g["pending"]) == 0 and int(g.get("lag") or 0) == 0


async def test_consumes_as_its_own_group_from_the_start_of_the_stream(capfeed: Any, redis_url: str) -> None:
    client, redis, store = capfeed
    await publish(redis, classified("a1"), classified("a2", countries=("FR",), types=("crime",)))
    await wait_for(lambda: drained(redis))
    assert await store.count() == 2
    groups = {g["name"].decode() for g in await redis.xinfo_groups(streams.ALERTS_CLASSIFIED)}
    assert groups == {"capfeed"}
    # an entry written before a (new) group existed is read too: the group starts at 0, not $
    await redis.delete(streams.ALERTS_CLASSIFIED, INDEX, "vigil:capfeed:alert:a1", "vigil:capfeed:alert:a2")
    await publish(redis, classified("early"))
    # the group vanished with the stream; the worker's watchdog recreates it at 0 and resumes
    await wait_for(lambda: store.known("early"), within=15)
    await wait_for(lambda: _ok(client, "/readyz"), within=15)


async def _ok(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


async def test_cap_document_is_valid_cap_1_2(capfeed: Any) -> None:
    client, redis, store = capfeed
    await publish(redis, classified("a1", text="Bomb threat\x00 <script>&amp; at Kievsky station\x1b[31m"))
    await wait_for(lambda: store.known("a1"))
    r = await client.get("/cap/a1.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/cap+xml")
    doc = validate_cap(r.content)
    assert text(doc, f"{CAP}identifier") == "vigil-a1-r1"
    assert text(doc, f"{CAP}msgType") == "Alert"
    assert doc.find(f"{CAP}references") is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-00:00", text(doc, f"{CAP}sent") or "")
    info = doc.find(f"{CAP}info")
    assert info is not None
    assert text(info, f"{CAP}category") == "Security"
    assert (text(info, f"{CAP}urgency"), text(info, f"{CAP}severity"), text(info, f"{CAP}certainty")) == (
        "Immediate",
        "Severe",
        "Likely",
    )
    assert "<script>&amp; at Kievsky" in (text(info, f"{CAP}description") or "")  # escaped, intact
    params = {
        (p.findtext(f"{CAP}valueName"), p.findtext(f"{CAP}value")) for p in info.findall(f"{CAP}parameter")
    }
    assert ("vigil:country", "RU") in params
    assert ("vigil:threat_type", "terrorism 0.90") in params
    area = info.find(f"{CAP}area")
    assert area is not None
    assert text(area, f"{CAP}areaDesc") == "Moscow, RU"
    assert text(area, f"{CAP}circle") == "55.7500,37.6200 0"
    assert (await client.get("/cap/nope.xml")).status_code == 404


async def test_updates_and_cancellations_carry_references(capfeed: Any) -> None:
    client, redis, _store = capfeed
    source = CapInfo(
        identifier="src-1",
        sender="w@example.org",
        sent=T0,
        msg_type="Alert",
        categories=("Met",),
        areas=(
            CapArea(
                area_desc="Moscow oblast", polygons=("55,37 56,37 56,38 55,37",), geocodes={"FIPS6": "RS48"}
            ),
        ),
    )
    await publish(redis, classified("a1", cap=source))
    await publish(redis, classified("a1", revision=2, cap=source.model_copy(update={"msg_type": "Update"})))
    await publish(redis, classified("a1", revision=3, cap=source.model_copy(update={"msg_type": "Cancel"})))
    await wait_for(lambda: drained(redis))

    r1 = validate_cap((await client.get("/cap/a1.xml?revision=1")).content)
    r2 = validate_cap((await client.get("/cap/a1.xml?revision=2")).content)
    latest = validate_cap((await client.get("/cap/a1.xml")).content)
    assert text(r1, f"{CAP}msgType") == "Alert"
    assert text(r2, f"{CAP}msgType") == "Update"
    assert text(latest, f"{CAP}msgType") == "Cancel"
    assert text(latest, f"{CAP}identifier") == "vigil-a1-r3"
    triple = re.compile(r"[^\s,]+,[^\s,]+,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")
    refs2 = (text(r2, f"{CAP}references") or "").split(" ")
    refs3 = (text(latest, f"{CAP}references") or "").split(" ")
    assert all(triple.fullmatch(r) for r in refs2 + refs3)
    r1_triple = f"vigil@localhost,{text(r1, f'{CAP}identifier')},{text(r1, f'{CAP}sent')}"
    assert refs2 == [r1_triple]
    assert refs3 == [r1_triple, f"vigil@localhost,vigil-a1-r2,{text(r2, f'{CAP}sent')}"]
    info = latest.find(f"{CAP}info")
    assert info is not None
    assert text(info, f"{CAP}category") == "Met"  # the source's own category wins
    assert text(info, f"{CAP}responseType") == "AllClear"
    assert text(info, f"{CAP}area/{CAP}polygon") == "55,37 56,37 56,38 55,37"
    # the feed shows the alert once, as cancelled
    feed = etree.fromstring((await client.get("/feeds/alerts.atom")).content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert entries[0].findtext(f"{ATOM}title", "").startswith("Cancelled: ")


async def test_an_update_arriving_first_still_references_the_source(capfeed: Any) -> None:
    client, redis, store = capfeed
    source = CapInfo(
        identifier="src-9",
        sender="w@example.org",
        sent=T0,
        msg_type="Update",
        references=("w@example.org,src-8,2025-03-01T10:00:00-00:00",),
    )
    await publish(redis, classified("a9", revision=2, cap=source))
    await wait_for(lambda: store.known("a9"))
    doc = validate_cap((await client.get("/cap/a9.xml")).content)
    assert text(doc, f"{CAP}msgType") == "Update"
    assert text(doc, f"{CAP}references") == "w@example.org,src-8,2025-03-01T10:00:00-00:00"


async def test_feed_filters_by_country_and_threat_type(capfeed: Any) -> None:
    client, redis, _store = capfeed
    await publish(
        redis,
        classified("ru-terror", countries=("RU",), types=("terrorism",), minutes=1),
        classified("ru-crime", countries=("RU",), types=("crime",), minutes=2),
        classified("fr-terror", countries=("FR",), types=("terrorism", "civil_unrest"), minutes=3),
        classified("harmless", is_threat=False, types=(), minutes=4),
    )
    await wait_for(lambda: drained(redis))

    async def ids(query: str) -> list[str]:
        r = await client.get("/feeds/alerts.atom" + query)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/atom+xml")
        feed = etree.fromstring(r.content)
        return [e.findtext(f"{ATOM}id", "").rsplit(":", 1)[-1] for e in feed.findall(f"{ATOM}entry")]

    assert await ids("") == ["fr-terror", "ru-crime", "ru-terror"]  # newest first; non-threat not kept
    assert await ids("?country=RU&threat_type=terrorism") == ["ru-terror"]
    assert await ids("?country=ru") == ["ru-crime", "ru-terror"]
    assert await ids("?threat_type=terrorism") == ["fr-terror", "ru-terror"]
    assert await ids("?country=RU,FR&threat_type=terrorism") == ["fr-terror", "ru-terror"]
    assert await ids("?country=DE") == []
    assert await ids("?limit=1") == ["fr-terror"]
    assert (await client.get("/feeds/alerts.atom?threat_type=aliens")).status_code == 422

    feed = etree.fromstring((await client.get("/feeds/alerts.atom")).content)
    entry = feed.find(f"{ATOM}entry")
    assert entry is not None
    link = entry.find(f"{ATOM}link[@rel='alternate']")
    assert link is not None
    assert link.get("type") == "application/cap+xml"
    assert link.get("href") == "http://capfeed.test/cap/fr-terror.xml"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None
        assert entry.find(f"{ATOM}{required}") is not None
    # every linked CAP document resolves and is valid
    for e in feed.findall(f"{ATOM}entry"):
        href = e.find(f"{ATOM}link[@rel='alternate']").get("href")  # type: ignore[union-attr]
        validate_cap((await client.get(href)).content)


async def test_redelivery_is_idempotent_and_the_store_is_bounded(redis: Redis) -> None:
    store = AlertStore(redis, max_alerts=3)
    first = classified("x0")
    assert (await store.put(first)).created
    assert not (await store.put(first)).created  # same revision again: nothing new
    for i in range(1, 6):
        await store.put(classified(f"x{i}", minutes=i))
    assert await store.count() == 3
    assert [a.alert_id for a in await store.latest(10)] == ["x5", "x4", "x3"]
    assert not await store.known("x0")  # dropped with all its revisions
    # an old revision arriving late does not move the alert back in the feed order
    await store.put(classified("x3", revision=2, minutes=10))
    await store.put(classified("x3", revision=1, minutes=3))
    assert next(a.alert_id for a in await store.latest(10)) == "x3"
    stored = await store.get("x3")
    assert stored is not None
    assert [r.alert.revision for r in stored.revisions] == [1, 2]
