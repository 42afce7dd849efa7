"""Stable alert ids and content fingerprints.

An alert's *identity key* says which real-world item a draft is, independent of the feed or
request it came through:

* CAP: ``cap:<sender>,<identifier>``; an Update/Cancel takes the key of the *original* alert its
  ``references`` name (the earliest referenced message), so it becomes a revision of it.
* feed item: its GUID / Atom id when that is globally unique (an absolute URL, ``tag:``, ``urn:``
  or a UUID), normalised as a URL (:func:`normalize_url`, fragment kept: travel-advice feeds put
  the version there); otherwise its link, normalised with the fragment dropped; otherwise the
  GUID scoped to the feed; otherwise the content.
* API/text posts: the ``url`` if given, else a hash of the normalised issuer + title + text.

``alert_id`` is ``"al_"`` + the first 20 hex digits of SHA-256 of the key. The *fingerprint* (hash
of normalised title + text, plus the CAP identifier and msgType for CAP) tells whether an item under
a known key changed: a new fingerprint is a new revision (see :mod:`vigil_ingest.dedup`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vigil_ingest.cleaning import collapse_whitespace
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput

ALERT_ID_PREFIX = "al_"
_TRACKING = re.compile(r"^(utm_[a-z_]*|fbclid|gclid|mc_cid|mc_eid|_hsenc|_hsmi)$", re.IGNORECASE)
_UUID = re.compile(
    r"^(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_UPDATE_WORD = r"(?:update[sd]?|correction|corrected|revised)"
_UPDATE_PREFIX = re.compile(
    rf"^\s*(?:\[\s*{_UPDATE_WORD}\s*\d*\s*\]\s*[:\-–—|]?|\(\s*{_UPDATE_WORD}\s*\d*\s*\)\s*[:\-–—|]?"
    rf"|{_UPDATE_WORD}\s*\d*\s*[:\-–—|])\s*",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_url(url: str, *, keep_fragment: bool = False) -> str:
    """A canonical form of ``url`` for identity.

    Lowercase scheme and host, default port dropped, ``utm_*``/click-id parameters dropped, the
    remaining query sorted, a trailing slash dropped, the fragment dropped unless asked to keep it.
    """
    raw = url.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    netloc = host
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    )
    path = parts.path.rstrip("/") if parts.path not in ("", "/") else ""
    fragment = parts.fragment if keep_fragment else ""
    return urlunsplit((scheme, netloc, path, urlencode(query), fragment))


def normalize_for_hash(text: str) -> str:
    """Text folded for comparison: NFKC, casefolded, whitespace collapsed."""
    return collapse_whitespace(unicodedata.normalize("NFKC", text).casefold())



def _is_absolute_url(value: str) -> bool:
    if ":" not in value:  # no scheme: urlsplit's answer without its cost (most feed and API ids)
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_globally_unique(guid: str) -> bool:
    """Whether a feed GUID identifies the item outside its feed (URL, ``tag:``, ``urn:``, UUID)."""
    value = guid.strip()
    return _is_absolute_url(value) or value.lower().startswith(("tag:", "urn:")) or bool(_UUID.match(value))


def cap_key(sender: str, identifier: str) -> str:
    return f"cap:{sender.strip().lower()},{identifier.strip()}"


def original_cap_key(draft: AlertDraft) -> str | None:
    """For a CAP Update/Cancel: the identity key of the original alert its references name."""
    cap = draft.cap
    if cap is None or cap.msg_type not in ("Update", "Cancel") or not cap.references:
        return None
    from vigil_ingest.cap import parse_cap_datetime  # lxml: not loaded by services that take only JSON

    candidates: list[tuple[float, int, str, str]] = []
    for position, triple in enumerate(cap.references):
        parts = triple.split(",")
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            continue
        try:
            sent = parse_cap_datetime(",".join(parts[2:]), "references") if len(parts) > 2 else None
        except InvalidInput:
            sent = None
        stamp = sent.timestamp() if sent else float("inf")
        candidates.append((stamp, position, parts[0], parts[1]))
    if not candidates:
        return None
    _, _, sender, identifier = min(candidates)
    return cap_key(sender, identifier)


def identity_key(draft: AlertDraft) -> str:
    """The feed-independent key naming the real-world item ``draft`` is (see module doc)."""
    if draft.cap is not None:
        return original_cap_key(draft) or cap_key(draft.cap.sender, draft.cap.identifier)
    guid = (draft.source_key or "").strip()
    if guid and is_globally_unique(guid):
        return "url:" + normalize_url(guid, keep_fragment=True) if _is_absolute_url(guid) else "guid:" + guid
    if draft.url and _is_absolute_url(draft.url):
        return "url:" + normalize_url(draft.url)
    if guid:
        return f"feed:{draft.source_name}:{guid}"
    content = "\n".join(normalize_for_hash(p) for p in (draft.issuer or "", draft.title, draft.text))
    return "content:" + _sha(content)


def alert_id_for(key: str) -> str:
    """The short stable id of an identity key."""
    return ALERT_ID_PREFIX + _sha(key)[:20]


def alert_id(draft: AlertDraft) -> str:
    return alert_id_for(identity_key(draft))


def fingerprint(draft: AlertDraft) -> str:
    """Hash of what makes a revision: normalised title + text (+ CAP identifier and msgType)."""
    parts = [normalize_for_hash(draft.title), normalize_for_hash(draft.text)]
    if draft.cap is not None:
        parts[:0] = [draft.cap.identifier.strip(), draft.cap.msg_type]
    return _sha("\x1f".join(parts))[:32]


def update_base_title(title: str) -> str | None:
    """For a title like ``"Update: Rally in X"``: the base title ``"Rally in X"``, else None."""
    match = _UPDATE_PREFIX.match(title)
    if match is None:
        return None
    base = title[match.end() :].strip()
    return base or None


def title_key(draft: AlertDraft, title: str | None = None) -> str | None:
    """Key under which an item's (base) title is remembered, scoped to its issuer or source.

    Used to link ``"Update: <title>"`` items that carry a new GUID/URL to the original.
    CAP alerts are threaded by ``references`` instead, so they have none.
    """
    if draft.cap is not None:
        return None
    value = normalize_for_hash(title if title is not None else draft.title)
    if not value:
        return None
    scope = normalize_for_hash(draft.issuer or draft.source_name)
    return "title:" + _sha(f"{scope}\x1f{value}")[:32]
