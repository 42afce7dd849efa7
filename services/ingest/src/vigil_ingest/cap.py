"""CAP 1.2 (Common Alerting Protocol) alerts: XML in, :class:`CapInfo` and a draft out.

Parsed with :mod:`defusedxml` only (see :mod:`vigil_ingest.xmlguard`). Element names are matched
by local name, so CAP 1.0/1.1 documents and documents without the namespace read the same. Of
several ``info`` blocks the first English one (``en``/``en-*``; CAP's default language is
``en-US``) is used. Every element Vigil has no slot for (``responseType``, ``effective``,
``parameter``, ``resource``, other languages' ``info``...) is kept in the draft's ``extra``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast, get_args
from xml.etree.ElementTree import Element

from vigil_shared.events import CapArea, CapInfo, CapMsgType, Certainty, Severity, Urgency

from vigil_ingest.cleaning import detect_language, normalize_inline, to_text
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput
from vigil_ingest.xmlguard import parse_xml

CAP_NAMESPACES: frozenset[str] = frozenset(
    {
        "urn:oasis:names:tc:emergency:cap:1.2",
        "urn:oasis:names:tc:emergency:cap:1.1",
        "http://www.incident.com/cap/1.0",
        "",
    }
)

_ALERT_KNOWN = {"identifier", "sender", "sent", "status", "msgType", "scope", "references", "info"}
_INFO_KNOWN = {
    "language", "category", "event", "urgency", "severity", "certainty", "headline", "description",
    "instruction", "expires", "area", "senderName", "web",
}  # fmt: skip
_AREA_KNOWN = {"areaDesc", "polygon", "circle", "geocode"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _children(element: Element, name: str) -> Iterator[Element]:
    for child in element:
        if isinstance(child.tag, str) and _local(child.tag) == name:
            yield child


def _text_of(element: Element | None) -> str | None:
    if element is None:
        return None
    value = "".join(element.itertext()).strip()
    return value or None


def _first(element: Element, name: str) -> str | None:
    return _text_of(next(_children(element, name), None))


def _all(element: Element, name: str) -> tuple[str, ...]:
    return tuple(v for v in (_text_of(c) for c in _children(element, name)) if v)


def _to_jsonable(element: Element) -> Any:
    """An element as JSON-able data: text for a leaf, a dict (lists for repeats) otherwise."""
    kids = [c for c in element if isinstance(c.tag, str)]
    if not kids:
        return _text_of(element) or ""
    grouped: dict[str, list[Any]] = {}
    for kid in kids:
        grouped.setdefault(_local(kid.tag), []).append(_to_jsonable(kid))
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


def _unknown(element: Element, known: set[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = _local(child.tag)
        if name in known:
            continue
        value = _to_jsonable(child)
        if name in extra:
            existing = extra[name]
            extra[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            extra[name] = value
    return extra


def parse_cap_datetime(value: str | None, field: str, *, required: bool = False) -> datetime | None:
    """A CAP ``dateTime`` (ISO 8601 with offset; a missing offset is read as UTC)."""
    if not value:
        if required:
            raise InvalidInput(f"CAP alert has no <{field}>")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"CAP <{field}> is not a valid date-time: {value[:60]!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _choice(value: str | None, allowed: tuple[str, ...], field: str, extra: dict[str, Any]) -> str | None:
    if value is None:
        return None
    for option in allowed:
        if option.lower() == value.lower():
            return option
    extra[f"cap_{field}_raw"] = value
    return None


def _pick_info(infos: list[Element]) -> tuple[Element | None, list[Element]]:
    if not infos:
        return None, []
    for info in infos:
        lang = (_first(info, "language") or "en-US").lower()
        if lang == "en" or lang.startswith("en-"):
            return info, [i for i in infos if i is not info]
    return infos[0], infos[1:]


def _area(element: Element, extra_areas: list[dict[str, Any]]) -> CapArea:
    geocodes: dict[str, str] = {}
    for geocode in _children(element, "geocode"):
        name, value = _first(geocode, "valueName"), _first(geocode, "value")
        if name and value:
            geocodes[name] = f"{geocodes[name]} {value}" if name in geocodes else value
    unknown = _unknown(element, _AREA_KNOWN)
    if unknown:
        extra_areas.append(unknown)
    return CapArea(
        area_desc=_first(element, "areaDesc") or "",
        polygons=_all(element, "polygon"),
        circles=_all(element, "circle"),
        geocodes=geocodes,
    )


def is_cap_root(root: Element) -> bool:
    if not isinstance(root.tag, str):
        return False
    return _local(root.tag) == "alert" and _namespace(root.tag) in CAP_NAMESPACES


def cap_from_element(root: Element, *, source_name: str = "cap") -> AlertDraft:
    """A draft (with :class:`CapInfo`) from a parsed CAP ``<alert>`` element."""
    if not is_cap_root(root):
        raise InvalidInput(f"not a CAP alert: root element is <{_local(str(root.tag))}>")
    identifier = _first(root, "identifier")
    sender = _first(root, "sender")
    if not identifier:
        raise InvalidInput("CAP alert has no <identifier>")
    if not sender:
        raise InvalidInput("CAP alert has no <sender>")
    sent = parse_cap_datetime(_first(root, "sent"), "sent", required=True)
    assert sent is not None
    extra: dict[str, Any] = _unknown(root, _ALERT_KNOWN)
    msg_type = _choice(_first(root, "msgType") or "Alert", get_args(CapMsgType), "msgType", extra)
    if msg_type is None:
        raise InvalidInput(f"CAP <msgType> is not one of {', '.join(get_args(CapMsgType))}")
    references = tuple((_first(root, "references") or "").split())

    info, other_infos = _pick_info(list(_children(root, "info")))
    if other_infos:
        extra["other_info"] = [_to_jsonable(i) for i in other_infos]
    fields: dict[str, Any] = {}
    areas: list[CapArea] = []
    issuer = sender
    url: str | None = None
    lang_hint: str | None = None
    if info is not None:
        extra.update({f"info_{k}": v for k, v in _unknown(info, _INFO_KNOWN).items()})
        extra_areas: list[dict[str, Any]] = []
        areas = [_area(a, extra_areas) for a in _children(info, "area")]
        if extra_areas:
            extra["area_extra"] = extra_areas
        description = _first(info, "description")
        instruction = _first(info, "instruction")
        fields = {
            "urgency": _choice(_first(info, "urgency"), get_args(Urgency), "urgency", extra),
            "severity": _choice(_first(info, "severity"), get_args(Severity), "severity", extra),
            "certainty": _choice(_first(info, "certainty"), get_args(Certainty), "certainty", extra),
            "categories": _all(info, "category"),
            "event": normalize_inline(_first(info, "event") or "") or None,
            "headline": normalize_inline(_first(info, "headline") or "") or None,
            "description": to_text(description) if description else None,
            "instruction": to_text(instruction) if instruction else None,
            "expires": parse_cap_datetime(_first(info, "expires"), "expires"),
        }
        issuer = normalize_inline(_first(info, "senderName") or "") or sender
        url = _first(info, "web")
        lang_hint = _first(info, "language") or "en-US"

    cap = CapInfo(
        identifier=identifier,
        sender=sender,
        sent=sent,
        msg_type=cast(CapMsgType, msg_type),
        status=_first(root, "status") or "Actual",
        scope=_first(root, "scope") or "Public",
        references=references,
        areas=tuple(areas),
        **fields,
    )
    title = cap.headline or cap.event or f"CAP {cap.msg_type} {identifier}"
    text = "\n\n".join(part for part in (cap.description, cap.instruction) if part)
    if not text:
        note = _first(root, "note")
        text = to_text(note) if note else title
    return AlertDraft(
        source_kind="cap",
        source_name=source_name,
        issuer=issuer,
        title=title,
        text=text,
        url=url,
        published=sent,
        language=detect_language(text, lang_hint),
        cap=cap,
        extra=extra,
        source_key=identifier,
    )


def parse_cap(data: bytes, *, source_name: str = "cap") -> AlertDraft:
    """A draft from CAP 1.2 XML bytes; hostile or invalid XML raises :class:`InvalidInput`."""
    return cap_from_element(parse_xml(data), source_name=source_name)
