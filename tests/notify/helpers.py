"""Builders shared by the notify tests (alerts, subscriptions, places)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from vigil_notify.subscriptions import Subscription
from vigil_shared.events import (
    AlertClassified,
    AlertReceived,
    CapInfo,
    Classification,
    Evidence,
    LabelScore,
    Location,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 15:00 in Moscow

MOSCOW = {
    "name": "Moscow",
    "country_code": "RU",
    "geonameid": 524901,
    "latitude": 55.7558,
    "longitude": 37.6173,
}
SPB = {"name": "Saint Petersburg", "country_code": "RU", "geonameid": 498817, "latitude": 59.9386,
       "longitude": 30.3141}  # fmt: skip
ISTANBUL = {"name": "Istanbul", "country_code": "TR", "geonameid": 745044, "latitude": 41.0138,
            "longitude": 28.9497}  # fmt: skip
MOSCOW_ID = {"name": "Moscow", "country_code": "US", "geonameid": 5601538, "latitude": 46.7324,
             "longitude": -117.0002, "admin1": "Idaho"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_alert(
    *,
    alert_id: str = "a-moscow-1",
    locations: tuple[dict[str, Any], ...] = (MOSCOW,),
    countries: tuple[str, ...] | None = None,
    threats: tuple[str, ...] = ("terrorism",),
    targets: tuple[str, ...] = ("shopping_centers", "transport_hubs"),
    severity: str = "Severe",
    urgency: str = "Expected",
    is_threat: bool = True,
    title: str = "Security Alert: Threats to crowded places in Moscow",
    text: str = "The Embassy has received reports of specific threats against shopping centers and metro "
    "stations in Moscow. Avoid crowds.",
    revision: int = 1,
    revision_of: str | None = None,
    cap: CapInfo | None = None,
    url: str | None = "https://ru.usembassy.gov/security-alert",
) -> AlertClassified:
    locs = tuple(Location(**loc) for loc in locations)
    cc = countries if countries is not None else tuple(dict.fromkeys(loc.country_code for loc in locs))
    ev = (Evidence(text="specific threats", start=10, end=26),)
    received = AlertReceived(
        correlation_id=f"corr-{alert_id}", producer="test", alert_id=alert_id, revision=revision,
        revision_of=revision_of, source_kind="rss", source_name="test-feed", issuer="U.S. Embassy Moscow",
        title=title, text=text, url=url, cap=cap,
    )  # fmt: skip
    cls = Classification(
        id=f"c-{alert_id}", is_threat=is_threat,
        threat_types=tuple(LabelScore(type=t, confidence=0.9, evidence=ev) for t in threats),
        targets=tuple(LabelScore(type=t, confidence=0.8) for t in targets),
        locations=locs, countries=cc, urgency=urgency, severity=severity, classifier_version="test",
    )  # fmt: skip
    return AlertClassified(correlation_id=received.correlation_id, producer="test", alert=received,
                           classification=cls)  # fmt: skip


def make_sub(sub_id: str, channels: list[str] | None = None, **filt: Any) -> Subscription:
    return Subscription(id=sub_id, name=sub_id.replace("-", " ").title(), owner=f"{sub_id}@example.com",
                        channels=channels or ["console://"], filter=filt)  # fmt: skip


def write_catch_all(folder: Path) -> tuple[Path, Path]:
    """A subscriptions file in ``folder`` with one catch-all (every alert, threat or not, to a JSONL
    file): returns (the subscriptions file, the JSONL file it delivers to)."""
    out = folder / "all.jsonl"
    catch_all = {"id": "everything", "name": "Everything", "channels": [f"jsonl://{out}"],
                 "filter": {"include_non_threats": True}}  # fmt: skip
    subs = folder / "subscriptions.yaml"
    subs.write_text(yaml.safe_dump({"subscriptions": [catch_all]}))
    return subs, out
