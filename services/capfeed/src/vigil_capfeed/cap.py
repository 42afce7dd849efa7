"""One CAP 1.2 document per alert revision (OASIS Common Alerting Protocol 1.2).

Mapping from Vigil's events:

* ``identifier`` — ``vigil-<alert_id>-r<revision>``: one CAP message per revision, stable across
  redeliveries; ``sent`` is when ingest accepted that revision (``AlertReceived.occurred_at``).
* ``msgType`` — ``Cancel`` when the source CAP message cancelled the alert, ``Update`` for any other
  revision > 1 (or a source ``Update``), else ``Alert``. Updates and cancellations carry
  ``references`` to every earlier revision capfeed stored (``sender,identifier,sent``); when none is
  stored (they were trimmed before capfeed saw them) the source's own ``references`` are passed on.
* ``info`` — urgency/severity/certainty from the classification (CAP requires all three),
  categories from the source CAP message or mapped from the threat types, the threat types,
  targets and countries as ``parameter`` pairs, and one ``area`` per source area or per place found.

Text from sources is hostile: it goes through ElementTree (escaped) after characters XML 1.0 cannot
carry are removed, so a document is always well-formed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from vigil_shared.events import AlertClassified, CapArea, Location

from vigil_capfeed.store import StoredAlert

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ET.register_namespace("", CAP_NS)

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
THREAT_CATEGORY = {
    "terrorism": "Security",
    "civil_unrest": "Security",
    "armed_conflict": "Security",
    "crime": "Security",
    "kidnapping": "Security",
    "natural_disaster": "Geo",
    "health": "Health",
    "transport_disruption": "Transport",
    "cyber": "Infra",
}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NO_SPACE = re.compile(r"[\s,<&]+")


def clean(text: str) -> str:
    """Text XML 1.0 can carry (control characters other than tab/newline/CR removed)."""
    return _XML_ILLEGAL.sub("", text)


def cap_time(dt: datetime) -> str:
    """CAP dateTime: ``YYYY-MM-DDThh:mm:ss+hh:mm``, no fractions, UTC as ``-00:00`` (never ``Z``)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC).replace(microsecond=0)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def identifier(alert_id: str, revision: int) -> str:
    return f"vigil-{_NO_SPACE.sub('_', alert_id)}-r{revision}"


def msg_type(event: AlertClassified) -> str:
    alert = event.alert
    source = alert.cap.msg_type if alert.cap else None
    if source == "Cancel":
        return "Cancel"
    if alert.revision > 1 or source == "Update":
        return "Update"
    return "Alert"


def references(stored: StoredAlert, event: AlertClassified, sender: str) -> list[str]:
    ours = [
        f"{sender},{identifier(r.alert.alert_id, r.alert.revision)},{cap_time(r.alert.occurred_at)}"
        for r in stored.revisions
        if r.alert.revision < event.alert.revision
    ]
    if ours:
        return ours
    if event.alert.cap:
        return [re.sub(r"\s+", "", ref) for ref in event.alert.cap.references if ref.strip()]
    return []


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = clean(text)
    return el


def _categories(event: AlertClassified) -> list[str]:
    source = [c for c in (event.alert.cap.categories if event.alert.cap else ()) if c in CATEGORIES]
    if source:
        return list(dict.fromkeys(source))
    mapped = [THREAT_CATEGORY.get(t.type, "Other") for t in event.classification.threat_types]
    return list(dict.fromkeys(mapped)) or ["Other"]


def _event_name(event: AlertClassified) -> str:
    if event.alert.cap and event.alert.cap.event:
        return event.alert.cap.event
    types = [t.type.replace("_", " ") for t in event.classification.threat_types]
    return ", ".join(types) if types else "Security information"


def _area_from_source(info: ET.Element, area: CapArea) -> None:
    el = _sub(info, "area")
    _sub(el, "areaDesc", area.area_desc or "unspecified")
    for p in area.polygons:
        _sub(el, "polygon", p)
    for c in area.circles:
        _sub(el, "circle", c)
    for name, value in area.geocodes.items():
        g = _sub(el, "geocode")
        _sub(g, "valueName", name)
        _sub(g, "value", value)


def _area_from_place(info: ET.Element, loc: Location) -> None:
    el = _sub(info, "area")
    _sub(el, "areaDesc", loc.name if loc.kind == "country" else f"{loc.name}, {loc.country_code}")
    if loc.latitude is not None and loc.longitude is not None and loc.kind == "city":
        _sub(el, "circle", f"{loc.latitude:.4f},{loc.longitude:.4f} 0")
    g = _sub(el, "geocode")
    _sub(g, "valueName", "ISO3166-1")
    _sub(g, "value", loc.country_code)
    if loc.geonameid is not None:
        g = _sub(el, "geocode")
        _sub(g, "valueName", "geonameid")
        _sub(g, "value", str(loc.geonameid))


def build_cap(stored: StoredAlert, revision: int | None, *, sender: str, sender_name: str) -> bytes:
    """The CAP 1.2 XML of one revision of a stored alert (the newest when ``revision`` is None)."""
    event = (
        stored.latest
        if revision is None
        else next(r for r in stored.revisions if r.alert.revision == revision)
    )
    alert, cls = event.alert, event.classification
    source_cap = alert.cap
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(alert.alert_id, alert.revision))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.occurred_at))
    _sub(root, "status", source_cap.status if source_cap and source_cap.status in STATUSES else "Actual")
    kind = msg_type(event)
    _sub(root, "msgType", kind)
    _sub(
        root,
        "source",
        f"Vigil ({alert.source_kind}: {alert.source_name}; classifier {cls.classifier_version})",
    )
    _sub(root, "scope", "Public")
    if source_cap:
        _sub(root, "note", f"Source CAP message {source_cap.identifier} from {source_cap.sender}")
    refs = references(stored, event, sender) if kind in ("Update", "Cancel") else []
    if refs:
        _sub(root, "references", " ".join(refs))
    _sub(root, "incidents", f"vigil-{_NO_SPACE.sub('_', alert.alert_id)}")

    info = _sub(root, "info")
    _sub(info, "language", alert.language or "en")
    for c in _categories(event):
        _sub(info, "category", c)
    _sub(info, "event", _event_name(event))
    _sub(info, "responseType", "AllClear" if kind == "Cancel" else "Monitor")
    _sub(info, "urgency", cls.urgency)
    _sub(info, "severity", cls.severity)
    _sub(info, "certainty", cls.certainty)
    if source_cap and source_cap.expires:
        _sub(info, "expires", cap_time(source_cap.expires))
    _sub(info, "senderName", alert.issuer or alert.source_name or sender_name)
    if alert.title:
        _sub(info, "headline", alert.title[:160])
    _sub(info, "description", alert.text)
    if source_cap and source_cap.instruction:
        _sub(info, "instruction", source_cap.instruction)
    if alert.url:
        _sub(info, "web", alert.url)
    params: list[tuple[str, str]] = [
        ("vigil:alert_id", alert.alert_id),
        ("vigil:revision", str(alert.revision)),
    ]
    params += [("vigil:threat_type", f"{t.type} {t.confidence:.2f}") for t in cls.threat_types]
    params += [("vigil:target", f"{t.type} {t.confidence:.2f}") for t in cls.targets]
    params += [("vigil:country", c) for c in cls.countries]
    for name, value in params:
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    if source_cap and source_cap.areas:
        for area in source_cap.areas:
            _area_from_source(info, area)
    else:
        for loc in cls.locations:
            _area_from_place(info, loc)
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
