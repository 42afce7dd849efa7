from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from vigil_ingest.cap import parse_cap
from vigil_ingest.errors import InvalidInput

ReadFeed = Callable[[str], bytes]


def test_cap_alert_fields(feed_bytes: ReadFeed) -> None:
    draft = parse_cap(feed_bytes("cap-earthquake.xml"), source_name="civil-protection")
    cap = draft.cap
    assert cap is not None
    assert cap.identifier == "example.test-2024-0206-0417"
    assert cap.sender == "alerts@civil-protection.example.test"
    assert cap.sent == datetime(2024, 2, 6, 1, 17, tzinfo=UTC)
    assert (cap.status, cap.msg_type, cap.scope) == ("Actual", "Alert", "Public")
    assert cap.references == ()
    assert (cap.urgency, cap.severity, cap.certainty) == ("Immediate", "Extreme", "Observed")
    assert cap.categories == ("Geo",)
    assert cap.event == "Earthquake"
    assert cap.headline == "Magnitude 7.1 earthquake in southern Turkey"
    assert cap.instruction is not None
    assert cap.instruction.startswith("Stay out of damaged buildings")
    assert cap.expires == datetime(2024, 2, 7, 1, 17, tzinfo=UTC)
    (area,) = cap.areas
    assert area.area_desc == "Gaziantep, Hatay and Kahramanmaras provinces"
    assert area.circles == ("37.17,37.03 150",)
    assert area.polygons == ()
    assert area.geocodes == {"ISO3166-2": "TR-27"}

    assert draft.source_kind == "cap"
    assert draft.source_name == "civil-protection"
    assert draft.title == "Magnitude 7.1 earthquake in southern Turkey"
    assert draft.text.startswith("A magnitude 7.1 earthquake struck near Gaziantep.")
    assert draft.text.endswith("Follow instructions from emergency services.")
    assert "\n\nStay out of damaged buildings." in draft.text
    assert draft.issuer == "Civil Protection Authority (example)"
    assert draft.language == "en"
    assert draft.source_key == cap.identifier
    # fields Vigil has no slot for are kept
    assert draft.extra["info_responseType"] == "Shelter"
    assert draft.extra["info_effective"] == "2024-02-06T04:17:00+03:00"


def test_cap_update_keeps_references(feed_bytes: ReadFeed) -> None:
    draft = parse_cap(feed_bytes("cap-earthquake-update.xml"))
    assert draft.cap is not None
    assert draft.cap.msg_type == "Update"
    assert draft.cap.references == (
        "alerts@civil-protection.example.test,example.test-2024-0206-0417,2024-02-06T04:17:00+03:00",
    )
    assert draft.title == "Update: aftershock of magnitude 6.4; Hatay airport closed"
    assert draft.cap.areas[0].geocodes == {"ISO3166-2": "TR-31"}


CAP_MULTI = b"""<?xml version="1.0"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>X-1</identifier><sender>s@example.test</sender><sent>2024-05-01T10:00:00-00:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>fr-FR</language><category>Met</category><event>Orage</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <description>Orages violents attendus.</description></info>
  <info><language>en-GB</language><category>Met</category><category>Safety</category><event>Storm</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <headline>Severe thunderstorms</headline>
    <description>Severe &lt;b&gt;storms&lt;/b&gt; expected.</description>
    <parameter><valueName>WIND</valueName><value>90</value></parameter>
    <area><areaDesc>Coast</areaDesc><polygon>1,1 1,2 2,2 1,1</polygon>
      <geocode><valueName>FIPS</valueName><value>001</value></geocode>
      <geocode><valueName>FIPS</valueName><value>003</value></geocode></area>
  </info>
</alert>"""


def test_cap_prefers_english_info_and_keeps_the_rest() -> None:
    draft = parse_cap(CAP_MULTI)
    assert draft.cap is not None
    assert draft.cap.event == "Storm"
    assert draft.cap.categories == ("Met", "Safety")
    assert draft.text == "Severe storms expected."
    assert draft.cap.areas[0].polygons == ("1,1 1,2 2,2 1,1",)
    assert draft.cap.areas[0].geocodes == {"FIPS": "001 003"}
    assert draft.extra["info_parameter"] == {"valueName": "WIND", "value": "90"}
    assert draft.extra["other_info"][0]["event"] == "Orage"
    assert draft.cap.sent.utcoffset() is not None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><sender>a</sender></alert>", "identifier"),
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>i</identifier>"
         b"<sender>a</sender><sent>yesterday</sent></alert>", "sent"),
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>i</identifier><sender>a</sender>"
         b"<sent>2024-01-01T00:00:00Z</sent><msgType>Shout</msgType></alert>", "msgType"),
        (b"<rss version='2.0'/>", "not a CAP alert"),
        (b"<alert><unclosed></alert>", "not well-formed"),
    ],
)  # fmt: skip
def test_invalid_cap_is_refused_with_a_reason(xml: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_cap(xml)
