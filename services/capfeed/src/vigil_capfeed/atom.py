"""The Atom feed (RFC 4287) of CAP alerts: one entry per alert, its newest revision, linking the CAP XML.

Entry ``id`` is stable per alert (``urn:vigil:alert:<alert_id>``) so feed readers show an update as
the same entry changing; ``updated`` is when the newest revision was accepted. Each entry links its
CAP document (``rel="alternate" type="application/cap+xml"``), as CAP-over-Atom consumers expect.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from vigil_capfeed.cap import cap_time, clean, msg_type
from vigil_capfeed.store import StoredAlert

ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("atom", ATOM_NS)


def _rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = clean(text)
    return el


def matches(stored: StoredAlert, countries: Sequence[str], threat_types: Sequence[str]) -> bool:
    """True when the newest revision names one of ``countries`` and one of ``threat_types`` (empty = any)."""
    cls = stored.latest.classification
    if countries:
        have = {c.upper() for c in cls.countries} | {loc.country_code.upper() for loc in cls.locations}
        if not have & {c.upper() for c in countries}:
            return False
    return not (threat_types and not {t.type for t in cls.threat_types} & set(threat_types))


def build_feed(
    alerts: Sequence[StoredAlert], *, base_url: str, self_url: str, title: str = "Vigil CAP alerts"
) -> bytes:
    base_url = base_url.rstrip("/")
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, "id", f"{base_url}/feeds/alerts.atom")
    _sub(feed, "title", title)
    updated = max((a.latest.alert.occurred_at for a in alerts), default=datetime(1970, 1, 1, tzinfo=UTC))
    _sub(feed, "updated", _rfc3339(updated))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "generator", "Vigil capfeed", version="0.1.0")
    author = _sub(feed, "author")
    _sub(author, "name", "Vigil")
    for stored in alerts:
        event = stored.latest
        alert, cls = event.alert, event.classification
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:vigil:alert:{alert.alert_id}")
        kind = msg_type(event)
        prefix = {"Update": "Update: ", "Cancel": "Cancelled: "}.get(kind, "")
        _sub(entry, "title", prefix + (alert.title or alert.text[:120]))
        _sub(entry, "updated", _rfc3339(alert.occurred_at))
        if alert.published:
            _sub(entry, "published", _rfc3339(alert.published))
        entry_author = _sub(entry, "author")
        _sub(entry_author, "name", alert.issuer or alert.source_name)
        _sub(
            entry,
            "link",
            rel="alternate",
            type="application/cap+xml",
            href=f"{base_url}/cap/{alert.alert_id}.xml",
        )
        if alert.url:
            _sub(entry, "link", rel="related", type="text/html", href=alert.url)
        for t in cls.threat_types:
            _sub(entry, "category", term=t.type, scheme="urn:vigil:threat_type")
        for c in cls.countries:
            _sub(entry, "category", term=c, scheme="urn:iso:std:iso:3166:-1")
        _sub(
            entry,
            "summary",
            (
                f"[{kind}, revision {alert.revision}, sent {cap_time(alert.occurred_at)}; "
                f"urgency {cls.urgency}, severity {cls.severity}, certainty {cls.certainty}] "
                f"{alert.text[:500]}"
            ),
        )
    ET.indent(feed)
    out: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out
