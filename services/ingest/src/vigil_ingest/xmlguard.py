"""Refusing hostile XML before anything expands it.

Every XML document ingest reads goes through here first. A document type declaration is where
entity bombs (billion laughs), external entities (XXE) and external DTD fetches live, and no
alert format Vigil reads needs one, so any DTD is refused, before a single entity is expanded:
:func:`parse_xml` uses :mod:`defusedxml` with ``forbid_dtd``, which stops at the start of the
``<!DOCTYPE`` (bounded time and memory whatever follows). The only exception is the bare public
DOCTYPE of Netscape RSS 0.91 feeds, blanked out before parsing.

Feeds are parsed by feedparser, which is lenient and may expand entities itself, so
:func:`ensure_safe_feed` vets the bytes first: a well-formed document is checked by defusedxml;
one that is not well-formed (feedparser may still read it) is refused if its bytes contain a
DOCTYPE or ENTITY declaration anywhere.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET

from vigil_ingest.errors import HostileXMLError, InvalidInput

_LEGACY_RSS_DOCTYPE = re.compile(
    rb'<!DOCTYPE\s+rss\s+PUBLIC\s+"-//Netscape Communications//DTD RSS 0\.91//EN"\s+'
    rb'"http://my\.netscape\.com/publish/formats/rss-0\.91\.dtd"\s*>',
    re.IGNORECASE,
)
_DECLARATION = re.compile(rb"<!\s*(doctype|entity|element|attlist|notation)", re.IGNORECASE)


def _blank_legacy_doctype(data: bytes) -> bytes:
    head = data[:4096]
    match = _LEGACY_RSS_DOCTYPE.search(head)
    if match is None:
        return data
    return data[: match.start()] + b" " * (match.end() - match.start()) + data[match.end() :]


def _hostile(exc: Exception) -> HostileXMLError:
    if isinstance(exc, defusedxml.DTDForbidden):
        what = "a document type declaration (DTD)"
    elif isinstance(exc, defusedxml.EntitiesForbidden):
        what = "entity declarations (possible entity-expansion bomb)"
    elif isinstance(exc, defusedxml.ExternalReferenceForbidden):
        what = "an external reference (possible XXE)"
    else:
        what = "forbidden XML constructs"
    return HostileXMLError(f"refused XML: it contains {what}; DTDs and entities are not accepted")


def parse_xml(data: bytes) -> Element:
    """Parse ``data`` with defusedxml, refusing any DTD, entity or external reference.

    Raises :class:`HostileXMLError` for those, :class:`InvalidInput` for XML that is not well formed.
    """
    data = _blank_legacy_doctype(data)
    try:
        root: Element = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise _hostile(exc) from None
    except ParseError as exc:
        raise InvalidInput(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError, RecursionError, MemoryError) as exc:  # odd encodings, depth bombs
        raise InvalidInput(f"unreadable XML: {type(exc).__name__}: {exc}") from None
    return root


def ensure_safe_feed(data: bytes) -> bytes:
    """The bytes to hand to feedparser, or :class:`HostileXMLError` if they hold a DTD/entities."""
    data = _blank_legacy_doctype(data)
    try:
        DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise _hostile(exc) from None
    except (ParseError, ValueError, LookupError, RecursionError):
        # Not well-formed: feedparser's lenient parser may still read it, so scan the raw bytes
        # (NULs dropped so UTF-16/32 text is scanned too) for any markup declaration.
        if _DECLARATION.search(data.replace(b"\x00", b"")):
            raise HostileXMLError(
                "refused XML: it contains a DOCTYPE or ENTITY declaration; DTDs and entities are not accepted"
            ) from None
    return data
