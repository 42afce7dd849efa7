from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from vigil_ingest.errors import InvalidInput
from vigil_ingest.feeds import parse_feed

ReadFeed = Callable[[str], bytes]


def test_embassy_rss_prefers_content_encoded_and_cleans_it(feed_bytes: ReadFeed) -> None:
    feed = parse_feed(feed_bytes("embassy-alerts.rss.xml"), source_name="us-embassy")
    assert feed.kind == "rss"
    assert feed.cap_links == ()
    assert [d.title for d in feed.drafts] == [
        "Security Alert: Threats to Crowded Places in Moscow and St. Petersburg",
        "Message for U.S. Citizens: Holiday Closure",
        "Demonstration Alert: Rally Planned Near City Center",
    ]
    first = feed.drafts[0]
    assert first.source_kind == "rss"
    assert first.source_name == "us-embassy"
    assert first.issuer == "Alert | U.S. Embassy & Consulates in Example Country"
    # content:encoded (full text) wins over the truncated description
    assert "regions near the border with Ukraine" in first.text
    assert "&#8230;" not in first.text
    assert "…" not in first.text
    assert "* Avoid crowds." in first.text
    assert "Assistance (https://example-embassy.test/contact/)" in first.text
    for leftover in ("<", "script", "alert(", "must be sanitized"):
        assert leftover not in first.text
    assert first.url == "https://example-embassy.test/security-alert-crowded-places/"
    assert first.published == datetime(2024, 3, 7, 18, 20, tzinfo=UTC)
    assert first.language == "en"
    assert first.source_key == "https://example-embassy.test/?p=24811"
    assert first.extra["author"] == "American Citizen Services"
    assert first.extra["categories"] == ["Alert"]
    # items without content:encoded use the description
    assert feed.drafts[1].text.startswith("The Embassy will be closed on Monday")


def test_travel_advice_atom(feed_bytes: ReadFeed) -> None:
    feed = parse_feed(feed_bytes("travel-advice.atom.xml"))
    assert feed.kind == "atom"
    assert feed.title == "Turkey travel advice"
    assert len(feed.drafts) == 2
    latest = feed.drafts[0]
    assert latest.source_kind == "atom"
    assert latest.source_name == "Turkey travel advice"
    assert latest.title == "Turkey"
    assert latest.text.startswith("Latest update: information on possible retaliatory attacks in Istanbul.")
    assert "<p>" not in latest.text
    assert latest.url == "https://advice.example.test/foreign-travel-advice/turkey"
    assert latest.published == datetime(2024, 3, 8, 10, 15, tzinfo=UTC)
    assert latest.language == "en"
    assert (
        latest.source_key
        == "https://advice.example.test/foreign-travel-advice/turkey#2024-03-08T10:15:00+00:00"
    )


CAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:example:cap-index</id><title>CAP alerts</title><updated>2024-02-06T09:30:00Z</updated>
  <entry><id>urn:example:1</id><title>Earthquake</title><updated>2024-02-06T04:17:00Z</updated>
    <link rel="alternate" type="application/cap+xml" href="https://cap.example.test/a1.xml"/></entry>
  <entry><id>urn:example:2</id><title>Update</title><updated>2024-02-06T09:30:00Z</updated>
    <link rel="alternate" type="application/cap+xml" href="https://cap.example.test/a2.xml"/></entry>
</feed>"""

CAP_RSS_INDEX = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>CAP</title>
<item><title>Storm</title><guid>s1</guid>
<enclosure url="https://cap.example.test/s1.cap" type="application/cap+xml" length="100"/></item>
<item><title>Storm bulletin</title><link>https://cap.example.test/bulletin.cap</link></item>
</channel></rss>"""


def test_cap_indexes_expose_cap_links_instead_of_drafts() -> None:
    atom = parse_feed(CAP_INDEX)
    assert atom.drafts == ()
    assert atom.cap_links == ("https://cap.example.test/a1.xml", "https://cap.example.test/a2.xml")
    rss = parse_feed(CAP_RSS_INDEX)
    assert rss.drafts == ()
    assert rss.cap_links == ("https://cap.example.test/s1.cap", "https://cap.example.test/bulletin.cap")


def test_unknown_item_fields_are_kept_in_extra() -> None:
    rss = b"""<?xml version="1.0"?><rss version="2.0" xmlns:x="urn:x"><channel><title>T</title>
    <item><title>A</title><description>Body text here.</description><comments>https://c.test/1</comments>
    <x:threat>high</x:threat><link>https://a.test/1?utm_source=rss</link></item></channel></rss>"""
    (draft,) = parse_feed(rss).drafts
    assert draft.extra["comments"] == "https://c.test/1"
    assert draft.extra["x_threat"] == "high"
    assert draft.url == "https://a.test/1"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01\x02\xff" * 50, b"just some words", b"<html><body>hi</body></html>", b"{}"],
)
def test_garbage_is_not_a_feed(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not an RSS or Atom feed"):
        parse_feed(data)
