"""Content detection for ``vigil send FILE|-``: whatever bytes arrive, route them to a parser.

:func:`detect_kind` decides from the bytes (and the content type, when one is given) whether the
input is a JSON alert or list of alerts, an RSS or Atom feed, a CAP alert, an HTML page or plain
text; :func:`parse_input` returns the drafts. Every failure is an :class:`InvalidInput`.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from vigil_ingest.cleaning import detect_language, detect_languages, normalize_inline, to_text
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import EmptyInput, InputTooLarge, InvalidInput, MalformedInput, UnsupportedContent

# The XML parsers (lxml, feedparser) are imported on the first XML body, not at start-up: a service
# that only takes JSON never loads them.

InputKind = Literal["json", "rss", "atom", "cap", "html", "xml", "text"]
"""``xml`` is XML that is none of the formats Vigil reads (parsing it gives the precise error)."""

DEFAULT_MAX_BYTES = 5_000_000
MAX_TITLE_LINE = 200

_XML_TYPES = ("application/xml", "text/xml")
_KIND_BY_TYPE: dict[str, InputKind] = {
    "application/json": "json",
    "application/rss+xml": "rss",
    "application/rdf+xml": "rss",
    "application/atom+xml": "atom",
    "application/cap+xml": "cap",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}
_ROOT = re.compile(
    r"\A\s*(?:<\?[^>]*\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>\s*)*<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedInput:
    """Drafts found in an input, and the CAP documents an RSS/Atom CAP index links to."""

    kind: InputKind
    drafts: tuple[AlertDraft, ...]
    cap_links: tuple[str, ...] = ()


class JsonAlert(BaseModel):
    """One alert as JSON (the HTTP API's ``POST /v1/alerts`` body); unknown fields go to ``extra``."""

    model_config = ConfigDict(extra="allow", str_max_length=1_000_000)

    title: str = ""
    text: str
    url: str | None = None
    issuer: str | None = None
    published: datetime | None = None
    language: str | None = None
    source: str | None = None
    id: str | None = None
    """The source's own id of the alert: re-posts with the same ``id`` and ``source`` are one alert."""

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("published")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("published needs a timezone offset (e.g. 2024-03-07T18:20:00Z)")
        return value


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _decode(data: bytes) -> str:
    """Text from bytes: BOM-aware UTF-8/16/32; anything that is not text is refused."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"input is not valid {encoding}: {exc.reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("input is not text: it is not valid UTF-8 (binary data?)") from None
    if "\x00" in text:
        raise InvalidInput("input is not text: it contains NUL bytes (binary data?)")
    return text


def _xml_root(head: str) -> str | None:
    match = _ROOT.match(head)
    return match.group(2).lower() if match else None


def detect_kind(data: bytes, content_type: str | None = None) -> InputKind:
    """What ``data`` is, from its content type when specific, else from its first bytes."""
    media = _media_type(content_type)
    if media in _KIND_BY_TYPE and media not in ("text/plain", "text/html"):
        return _KIND_BY_TYPE[media]
    known = media in _KIND_BY_TYPE or media in _XML_TYPES or media.endswith(("+json", "+xml"))
    if media and not known:
        raise UnsupportedContent(
            f"unsupported content type {media!r}: send JSON, RSS/Atom, CAP XML, HTML or plain text"
        )
    if media.endswith("+json"):
        return "json"
    head = data[:8192]
    text_head = _decode_head(head)
    stripped = text_head.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "[") and media != "text/plain":
        return "json"
    if stripped[:1] != "<":
        return "text"
    root = _xml_root(stripped)
    if root in ("rss", "rdf", "channel"):
        return "rss"
    if root == "feed":
        return "atom"
    if root == "alert":
        return "cap"
    if root in (
        "html",
        "head",
        "body",
        "div",
        "p",
        "span",
        "a",
        "ul",
        "table",
        "h1",
        "h2",
        "br",
        "b",
        "strong",
    ):
        return "html"
    if root is None and "<!doctype html" in stripped[:200].lower():
        return "html"
    if stripped.startswith("<?xml") or media in _XML_TYPES or media.endswith("+xml") or root is None:
        return "xml"
    return "text"


def _decode_head(head: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore")
    return head.decode("utf-8", errors="ignore")


_ALERT_LIST: TypeAdapter[list[JsonAlert]] = TypeAdapter(list[JsonAlert])
_BOM_STARTS = frozenset(b[0] for b in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE))
"""First bytes of the BOMs :func:`_decode` reads: such a body is validated from its decoded text."""


def _valid_list(data: bytes, raw: str) -> list[JsonAlert] | None:
    """The alerts of a body that is a JSON array of valid alerts, parsed and validated in one call
    (pydantic's ``validate_json``: no ``json.loads`` tree, no validation item by item); None for any
    other body and for any error, which the item-by-item path then finds and words as always."""
    if raw[:64].lstrip(" \t\r\n")[:1] != "[":
        return None
    try:
        alerts = _ALERT_LIST.validate_json(raw if data[:1] and data[0] in _BOM_STARTS else data)
    except ValueError:  # ValidationError (invalid JSON too) and anything else: the item-by-item path
        return None
    return alerts or None


def _json_drafts(data: bytes, source_name: str, stamp: str | None = None) -> tuple[AlertDraft, ...]:
    raw = _decode(data)
    alerts = _valid_list(data, raw)
    if alerts is not None:
        # the same fields, checks and drafts as below, alert by alert, in order
        values = [
            _json_alert_fields(alert, source_name=source_name, where=f"alert {position + 1}: ", stamp=stamp)
            for position, alert in enumerate(alerts)
        ]
        del alerts
        languages = detect_languages([v.pop("_sample") for v in values], [v["language"] for v in values])
        return tuple(AlertDraft(**{**v, "language": lang}) for v, lang in zip(values, languages, strict=True))
    try:
        payload: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedInput(f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (RecursionError, ValueError) as exc:
        raise MalformedInput(f"malformed JSON: {type(exc).__name__}: {exc}"[:300]) from None
    if isinstance(payload, dict) and isinstance(payload.get("alerts"), list):
        payload = payload["alerts"]
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise EmptyInput("JSON list of alerts is empty")
    fields: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        where = f"alert {position + 1}: " if isinstance(payload, list) else ""
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}expected a JSON object with 'title' and 'text'")
        try:
            alert = JsonAlert.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise InvalidInput(f"{where}invalid alert: {loc}: {first['msg']}") from None
        fields.append(_json_alert_fields(alert, source_name=source_name, where=where, stamp=stamp))
    del payload, items
    # one language pass over the whole body: the texts are scored together (cheaper per text)
    languages = detect_languages([f.pop("_sample") for f in fields], [f["language"] for f in fields])
    return tuple(AlertDraft(**{**f, "language": lang}) for f, lang in zip(fields, languages, strict=True))


def _json_alert_fields(
    alert: JsonAlert, *, source_name: str, where: str, stamp: str | None = None
) -> dict[str, Any]:
    """The draft's fields from one validated JSON alert; ``language`` is still the alert's hint and
    ``_sample`` the text to detect the language of. ``stamp``: see :func:`parse_input`."""
    text = to_text(alert.text)
    title = normalize_inline(to_text(alert.title)) if alert.title else ""
    if not text:
        raise EmptyInput(f"{where}text is empty: send the alert's text")
    extra = json.loads(json.dumps(alert.model_extra, default=str)) if alert.model_extra else {}
    source = alert.source or source_name
    if stamp:
        if source and source != stamp:
            extra = {**extra, "claimed_source": source}
        source = stamp
    return {
        "source_kind": "api",
        "source_name": source,
        "issuer": normalize_inline(alert.issuer) if alert.issuer else None,
        "title": title,
        "text": text,
        "url": alert.url.strip() if alert.url and alert.url.strip() else None,
        "published": alert.published,
        "language": alert.language,
        "extra": extra,
        "source_key": alert.id,
        "_sample": f"{title}\n{text}" if title else text,
    }


def json_alert_to_draft(alert: JsonAlert, *, source_name: str = "api", where: str = "") -> AlertDraft:
    """A draft from one validated JSON alert (also usable by the HTTP API)."""
    fields = _json_alert_fields(alert, source_name=source_name, where=where)
    sample = fields.pop("_sample")
    return AlertDraft(**{**fields, "language": detect_language(sample, fields["language"])})


def text_to_draft(
    raw: str, *, source_name: str = "text", content_type: str | None = None, language: str | None = None
) -> AlertDraft:
    """A draft from plain text or HTML: the first line is the title when more lines follow."""
    text = to_text(raw, content_type)
    if not text:
        raise EmptyInput("text is empty: send the alert's text")
    title = ""
    first, _, rest = text.partition("\n")
    if rest.strip() and len(first) <= MAX_TITLE_LINE:
        title, text = normalize_inline(first), rest.strip()
    return AlertDraft(
        source_kind="text",
        source_name=source_name,
        title=title,
        text=text,
        language=detect_language(f"{title}\n{text}", language),
    )


def parse_input(
    data: bytes,
    *,
    content_type: str | None = None,
    source_name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stamp: str | None = None,
) -> ParsedInput:
    """Detect what ``data`` is and parse it into drafts; :class:`InvalidInput` on any problem.

    ``stamp`` (the HTTP API's key name): JSON alerts are made with it as their ``source_name``, the
    source they named otherwise (theirs, or ``source_name``) kept as ``extra.claimed_source`` when it
    differs, as the API's ``_stamp`` does to any draft (which then leaves these as they are: no copy
    of each draft). Other kinds of input are stamped by the API."""
    if len(data) > max_bytes:
        raise InputTooLarge(f"input of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data.strip():
        raise EmptyInput("input is empty")
    kind = detect_kind(data, content_type)
    if kind == "json":
        return ParsedInput("json", _json_drafts(data, source_name or "api", stamp))
    if kind in ("rss", "atom"):
        from vigil_ingest.feeds import parse_feed

        feed = parse_feed(data, source_name=source_name)
        return ParsedInput(feed.kind, feed.drafts, feed.cap_links)
    if kind == "cap":
        from vigil_ingest.cap import parse_cap

        return ParsedInput("cap", (parse_cap(data, source_name=source_name or "cap"),))
    if kind == "xml":
        from vigil_ingest.xmlguard import parse_xml

        root = parse_xml(data)  # refuses hostile XML, reports malformed XML precisely
        name = str(root.tag).rsplit("}", 1)[-1]
        raise UnsupportedContent(f"XML document with root <{name}> is not RSS, Atom or CAP 1.2")
    text = _decode(data)
    html_type = "text/html" if kind == "html" else None
    draft = text_to_draft(text, source_name=source_name or "text", content_type=html_type)
    return ParsedInput(kind, (draft,))


__all__ = [
    "DEFAULT_MAX_BYTES",
    "InputKind",
    "JsonAlert",
    "ParsedInput",
    "detect_kind",
    "json_alert_to_draft",
    "parse_input",
    "text_to_draft",
]
