"""Pure transformations from stream entries to what the page shows (tested without a browser)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from vigil_shared.envelope import decode_entry
from vigil_shared.events import SEVERITY_RANK, AlertClassified, classified_text


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_time(entry_id: str) -> str:
    """The time Redis stamped on a stream entry id, ISO 8601 UTC."""
    ms = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def parse_classified(fields: dict[bytes, bytes]) -> tuple[bytes, AlertClassified]:
    body, _ = decode_entry(fields)
    return body, AlertClassified.model_validate_json(body)


def summary(entry_id: str, ev: AlertClassified) -> dict[str, Any]:
    """One row of the live list / one point of the map."""
    a, c = ev.alert, ev.classification
    cap = a.cap
    return {
        "entry_id": entry_id,
        "alert_id": a.alert_id,
        "revision": a.revision,
        "revision_of": a.revision_of,
        "correlation_id": ev.correlation_id,
        "title": a.title or a.text[:120],
        "source_name": a.source_name,
        "source_kind": a.source_kind,
        "issuer": a.issuer,
        "received_at": a.occurred_at.isoformat(),
        "classified_at": ev.occurred_at.isoformat(),
        "stream_time": entry_time(entry_id),
        "is_threat": c.is_threat,
        "severity": c.severity,
        "urgency": c.urgency,
        "certainty": c.certainty,
        "threat_types": [t.type for t in c.threat_types],
        "targets": [t.type for t in c.targets],
        "countries": list(c.countries),
        "locations": [
            {
                "name": loc.name,
                "country_code": loc.country_code,
                "kind": loc.kind,
                "lat": loc.latitude,
                "lon": loc.longitude,
            }
            for loc in c.locations
        ],
        "msg_type": cap.msg_type if cap else "Alert",
        "expires": cap.expires.isoformat() if cap and cap.expires else None,
    }


@dataclass(frozen=True)
class AlertFilter:
    """The list's filters; empty fields mean "any"."""

    country: str = ""
    threat_type: str = ""
    target_type: str = ""
    min_severity: str = ""
    since_s: float | None = None

    def matches(self, row: dict[str, Any], now: datetime | None = None) -> bool:
        if self.country and self.country.upper() not in row["countries"]:
            return False
        if self.threat_type and self.threat_type not in row["threat_types"]:
            return False
        if self.target_type and self.target_type not in row["targets"]:
            return False
        if self.min_severity and SEVERITY_RANK.get(row["severity"], 0) < SEVERITY_RANK.get(self.min_severity, 0):
            return False
        if self.since_s is not None:
            now = now or datetime.now(UTC)
            if datetime.fromisoformat(row["classified_at"]) < now - timedelta(seconds=self.since_s):
                return False
        return True


def segments(ev: AlertClassified) -> list[dict[str, Any]]:
    """The classified text cut into plain and highlighted pieces (threat words, targets, places).

    Offsets index into :func:`classified_text`; spans out of range or overlapping an earlier
    (longer-first) span are dropped, so the pieces always concatenate back to the exact text.
    """
    text = classified_text(ev.alert.title, ev.alert.text)
    c = ev.classification
    spans: list[tuple[int, int, str, str]] = []
    for label in c.threat_types:
        spans += [(e.start, e.end, "threat", label.type) for e in label.evidence]
    for label in c.targets:
        spans += [(e.start, e.end, "target", label.type) for e in label.evidence]
    for loc in c.locations:
        spans += [(e.start, e.end, "place", f"{loc.name}, {loc.country_code}") for e in loc.evidence]
    spans = [s for s in spans if 0 <= s[0] < s[1] <= len(text)]
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[dict[str, Any]] = []
    pos = 0
    for start, end, kind, span_label in spans:
        if start < pos:
            continue  # overlaps a span already shown
        if start > pos:
            out.append({"text": text[pos:start], "kind": None, "label": None})
        out.append({"text": text[start:end], "kind": kind, "label": span_label})
        pos = end
    if pos < len(text) or not out:
        out.append({"text": text[pos:], "kind": None, "label": None})
    return out


def notification_record(entry_id: str, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """A ``NotificationDelivered``/``NotificationFailed`` entry as a journey step (None if unreadable)."""
    try:
        body, headers = decode_entry(fields)
        doc = orjson.loads(body)
    except Exception:
        return None
    if not isinstance(doc, dict) or "alert_id" not in doc:
        return None
    failed = headers.get("event_type") == "notification.failed" or "error" in doc
    return {
        "entry_id": entry_id,
        "time": doc.get("occurred_at") or entry_time(entry_id),
        "alert_id": doc.get("alert_id"),
        "revision": doc.get("revision", 1),
        "correlation_id": doc.get("correlation_id"),
        "subscription_id": doc.get("subscription_id"),
        "channel": doc.get("channel"),
        "kind": doc.get("kind", "new"),
        "attempt": doc.get("attempt", 1),
        "outcome": "failed" if failed else "delivered",
        "permanent": bool(doc.get("permanent")) if failed else None,
        "error": doc.get("error") if failed else None,
        "reason": doc.get("reason") if not failed else None,
    }


def journey(ev: AlertClassified, entry_id: str, notifications: list[dict[str, Any]],
            dead_letters: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """received -> classified -> one line per (subscription, channel) with every attempt, oldest first."""
    per_channel: dict[tuple[str, str], dict[str, Any]] = {}
    for n in sorted(notifications, key=lambda n: n["entry_id"]):
        key = (str(n["subscription_id"]), str(n["channel"]))
        row = per_channel.setdefault(
            key, {"subscription_id": key[0], "channel": key[1], "attempts": [], "outcome": None, "time": None}
        )
        row["attempts"].append(n)
        row["outcome"] = n["outcome"] if n["outcome"] == "delivered" or n.get("permanent") else "retrying"
        row["time"] = n["time"]
    return {
        "received": {
            "time": ev.alert.occurred_at.isoformat(),
            "source": f"{ev.alert.source_kind}:{ev.alert.source_name}",
            "producer": ev.alert.producer,
        },
        "classified": {
            "time": ev.occurred_at.isoformat(),
            "stream_time": entry_time(entry_id),
            "producer": ev.producer,
            "classifier_version": ev.classification.classifier_version,
        },
        "notifications": list(per_channel.values()),
        "dead_letters": dead_letters,
    }


def detail(entry_id: str, ev: AlertClassified) -> dict[str, Any]:
    c = ev.classification
    return {
        "summary": summary(entry_id, ev),
        "text": classified_text(ev.alert.title, ev.alert.text),
        "segments": segments(ev),
        "url": ev.alert.url,
        "published": ev.alert.published.isoformat() if ev.alert.published else None,
        "language": ev.alert.language,
        "cap": ev.alert.cap.model_dump(mode="json") if ev.alert.cap else None,
        "classification": {
            "is_threat": c.is_threat,
            "severity": c.severity,
            "urgency": c.urgency,
            "certainty": c.certainty,
            "classifier_version": c.classifier_version,
            "threat_types": [{"type": t.type, "confidence": t.confidence} for t in c.threat_types],
            "targets": [{"type": t.type, "confidence": t.confidence} for t in c.targets],
            "locations": [
                {
                    "name": loc.name, "country_code": loc.country_code, "kind": loc.kind,
                    "lat": loc.latitude, "lon": loc.longitude, "confidence": loc.confidence,
                    "admin1": loc.admin1,
                }
                for loc in c.locations
            ],
        },
    }


FEED_FIELDS = (
    "name", "url", "last_success", "last_error", "last_error_at", "last_status",
    "consecutive_failures", "next_poll_at", "items_last_poll",
)  # fmt: skip


def feed_state(raw: bytes | str) -> dict[str, Any]:
    """Ingest's per-feed state (``vigil:feeds:<name>:state``) reduced to what an operator needs."""
    try:
        doc = orjson.loads(raw)
    except Exception:
        return {"name": "?", "last_error": "unreadable feed state"}
    if not isinstance(doc, dict):
        return {"name": "?", "last_error": "unreadable feed state"}
    out = {k: doc.get(k) for k in FEED_FIELDS}
    failures = int(out.get("consecutive_failures") or 0)
    out["health"] = "failing" if failures else ("ok" if out.get("last_success") else "not polled yet")
    return out
