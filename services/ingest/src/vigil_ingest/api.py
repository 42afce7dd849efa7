"""Ingest's HTTP API: ``POST /v1/alerts`` (one alert) and ``POST /v1/alerts:batch`` (any number).

Both take the same bodies, told apart by ``Content-Type`` (and, for ``text/plain``, by content):

* ``application/json`` (or ``*+json``): an alert object ``{"title", "text", "url", "issuer",
  "published", "language", "source", "id"}`` — unknown fields are kept in the event's ``extra``;
  the batch endpoint also takes an array of them or ``{"alerts": [...]}``;
* ``text/plain`` (or ``text/html``): one alert, the first line is the title when more follow;
* webhooks: ``application/cap+xml`` (a CAP 1.2 alert), ``application/rss+xml``,
  ``application/atom+xml``, ``application/xml``/``text/xml`` (sniffed) — parsed by
  :func:`vigil_ingest.detect.parse_input`, hostile XML (DTDs, entities) refused unparsed.

``/v1/alerts`` answers one result and refuses bodies holding more than one alert (a feed with
several items goes to the batch endpoint). Every result says the alert's stable ``alert_id`` and
whether it was ``new``, a ``revision`` of a known alert or a ``duplicate`` (not published again).

Bad input: malformed JSON 400, oversize body 413 (``VIGIL_INGEST_MAX_BODY_BYTES``), unsupported
content type 415, anything else unusable 422 — each with ``{"detail": "<reason>"}`` and a log line
naming the source. A batch is all or nothing: if any item is bad nothing is published.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from vigil_shared.auth import AUTH_RESPONSES, ApiAuth, Principal, Role

from vigil_ingest.detect import JsonAlert, parse_input
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.errors import InvalidInput
from vigil_ingest.intake import IntakeResult, accept
from vigil_ingest.settings import IngestSettings

log = structlog.get_logger("vigil.ingest.api")

JSON_TYPES = frozenset({"application/json"})
TEXT_TYPES = frozenset({"text/plain", "text/html", "application/xhtml+xml"})
XML_TYPES = frozenset(
    {
        "application/cap+xml",
        "application/rss+xml",
        "application/rdf+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
    }
)
ACCEPTED_TYPES = (
    "application/json, text/plain, application/cap+xml, application/rss+xml, application/atom+xml"
)


class AlertAccepted(BaseModel):
    alert_id: str = Field(description="Stable id: re-posts and re-polls of the same item get the same id.")
    revision: int = Field(description="1 for the first version of an alert, 2, 3... for changed versions.")
    status: Literal["new", "revision", "duplicate"] = Field(
        description="new, revision (a changed version, published, linked) or duplicate (not published again)"
    )
    correlation_id: str | None = Field(description="Follows the alert through classify and notify.")
    revision_of: str | None = Field(
        default=None, description="For revisions: the alert_id of the first version."
    )
    title: str = ""


class BatchAccepted(BaseModel):
    results: list[AlertAccepted] = Field(description="One result per alert, in the order sent.")
    new: int = 0
    revisions: int = 0
    duplicates: int = 0


class Problem(BaseModel):
    detail: str


def _accepted(r: IntakeResult) -> AlertAccepted:
    return AlertAccepted(
        alert_id=r.alert_id,
        revision=r.revision,
        status=r.status,
        correlation_id=r.correlation_id,
        revision_of=r.revision_of,
        title=r.title,
    )


def batch_json(results: list[IntakeResult]) -> bytes:
    """``BatchAccepted`` of ``results`` as FastAPI's ``JSONResponse`` would render it: orjson writes
    the same bytes as its ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` for these strings,
    ints and nulls (tested on every code point); a string orjson refuses (a lone surrogate) takes
    ``json.dumps``, and its error."""
    body = {
        "results": [r.as_dict() for r in results],
        "new": sum(r.status == "new" for r in results),
        "revisions": sum(r.status == "revision" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
    }
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        pass
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _is_accepted_type(media: str) -> bool:
    return (
        media in JSON_TYPES or media in TEXT_TYPES or media in XML_TYPES or media.endswith(("+json", "+xml"))
    )


def _request_body_doc(batch: bool) -> dict[str, Any]:
    alert = JsonAlert.model_json_schema()
    alert.pop("title", None)
    alert["additionalProperties"] = True
    alert["description"] = "One alert. Fields Vigil has no slot for are kept in the event's `extra`."
    json_schema: dict[str, Any] = alert
    if batch:
        json_schema = {
            "oneOf": [
                {"type": "array", "items": alert},
                {
                    "type": "object",
                    "properties": {"alerts": {"type": "array", "items": alert}},
                    "required": ["alerts"],
                },
                alert,
            ]
        }
    xml = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "Demonstration in the city centre\nAvoid the main square this afternoon.",
                },
                "application/cap+xml": xml,
                "application/rss+xml": xml,
                "application/atom+xml": xml,
            },
        }
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed JSON"},
    413: {"model": Problem, "description": "Body (or batch) larger than the configured limit"},
    415: {"model": Problem, "description": "Unsupported or missing Content-Type"},
    422: {"model": Problem, "description": "Not a usable alert (empty text, invalid field, hostile XML...)"},
    503: {"model": Problem, "description": "Redis unavailable: nothing was published, retry"},
}


def _stamp(drafts: list[AlertDraft], principal: Principal) -> list[AlertDraft]:
    """The API key's name is the source of what it posts (a caller cannot pose as another source);
    a different source the body or ``?source=`` named is kept as ``extra.claimed_source``."""
    if not principal.name:
        return drafts
    out = []
    for d in drafts:
        if d.source_name == principal.name:  # stamped when parsed (JSON), or its own: as it would be made
            out.append(d)
            continue
        update: dict[str, Any] = {"source_name": principal.name}
        if d.source_name and d.source_name != principal.name:
            update["extra"] = {**d.extra, "claimed_source": d.source_name}
        out.append(d.model_copy(update=update))
    return out


def build_router(redis: Redis, settings: IngestSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["alerts"])
    # every alert route needs an API key with role ingest (or admin), rate-limited per key (SECURITY.md)
    ingest_key = Depends(ApiAuth.from_settings(settings, redis, component="ingest").require(Role.INGEST))
    limit = settings.max_body_bytes

    def refuse(request: Request, status: int, detail: str, source: str | None) -> HTTPException:
        log.warning(
            "alert refused",
            status=status,
            reason=detail,
            source=source or "unnamed",
            client=request.client.host if request.client else None,
            content_type=request.headers.get("content-type"),
            path=request.url.path,
        )
        return HTTPException(status_code=status, detail=detail)

    async def read_body(request: Request, source: str | None) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise refuse(request, 413, f"body of {declared} bytes exceeds the limit of {limit} bytes", source)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise refuse(request, 413, f"body exceeds the limit of {limit} bytes", source)
        return bytes(body)

    async def drafts_from(
        request: Request, source: str | None, *, batch: bool, stamp: str | None = None
    ) -> list[AlertDraft]:
        media = media_type(request.headers.get("content-type"))
        if not media:
            raise refuse(request, 415, f"Content-Type is missing; send one of {ACCEPTED_TYPES}", source)
        if not _is_accepted_type(media):
            hint = (
                " (curl -d sends a form; add -H 'Content-Type: text/plain' or application/json)"
                if media == "application/x-www-form-urlencoded"
                else ""
            )
            raise refuse(
                request,
                415,
                f"content type {media} is not supported; send one of {ACCEPTED_TYPES}{hint}",
                source,
            )
        body = await read_body(request, source)
        plain = media in JSON_TYPES or media in TEXT_TYPES or media.endswith("+json")
        name = source or (settings.source_name if plain else None)
        try:
            parsed = await run_in_threadpool(
                parse_input, body, content_type=media, source_name=name, max_bytes=limit, stamp=stamp
            )
        except InvalidInput as exc:
            raise refuse(request, exc.status_code, str(exc), source) from None
        drafts = list(parsed.drafts)
        if not drafts and parsed.cap_links:
            raise refuse(
                request,
                422,
                f"this is an index of {len(parsed.cap_links)} CAP documents; linked documents are not "
                "fetched for posted bodies: post the CAP documents, or configure the index as a feed",
                source,
            )
        if not drafts:
            raise refuse(request, 422, f"the {parsed.kind} document holds no alert", source)
        if not batch and len(drafts) != 1:
            raise refuse(
                request, 422, f"the body holds {len(drafts)} alerts; POST them to /v1/alerts:batch", source
            )
        if batch and len(drafts) > settings.max_batch_items:
            raise refuse(
                request,
                413,
                f"batch of {len(drafts)} alerts exceeds the limit of {settings.max_batch_items} "
                "(VIGIL_INGEST_MAX_BATCH_ITEMS)",
                source,
            )
        return drafts

    async def ingest(request: Request, drafts: list[AlertDraft], source: str | None) -> list[IntakeResult]:
        try:
            return await accept(redis, drafts, ttl_s=settings.dedup_ttl_s, maxlen=settings.stream_maxlen)
        except (RedisError, OSError) as exc:
            log.error("could not record alerts", error=repr(exc), source=source or drafts[0].source_name)
            raise HTTPException(
                503, "alerts could not be recorded (Redis unavailable); nothing was published, retry"
            ) from None
        except ValueError as exc:  # a draft that cannot become a valid event (nothing published)
            raise refuse(request, 422, f"invalid alert: {exc}"[:500], source) from None

    source_param = Query(
        default=None,
        max_length=200,
        pattern=r"^[\w.\-:/@ ]+$",
        description="Source name for alerts that do not name one (JSON `source` wins).",
    )

    @router.post(
        "/alerts",
        response_model=AlertAccepted,
        status_code=202,
        responses={**_ERRORS, **AUTH_RESPONSES},
        summary="Submit one alert (JSON, text/plain or a CAP/RSS/Atom webhook body)",
        openapi_extra=_request_body_doc(batch=False),
    )
    async def post_alert(
        request: Request, source: str | None = source_param, principal: Principal = ingest_key
    ) -> AlertAccepted:
        drafts = _stamp(await drafts_from(request, source, batch=False, stamp=principal.name), principal)
        return _accepted((await ingest(request, drafts, source))[0])

    @router.post(
        "/alerts:batch",
        response_model=BatchAccepted,
        status_code=202,
        responses={**_ERRORS, **AUTH_RESPONSES},
        summary='Submit many alerts (JSON array, {"alerts": [...]}, or an RSS/Atom feed); all or nothing',
        openapi_extra=_request_body_doc(batch=True),
    )
    async def post_batch(
        request: Request, source: str | None = source_param, principal: Principal = ingest_key
    ) -> Response:
        drafts = _stamp(await drafts_from(request, source, batch=True, stamp=principal.name), principal)
        results = await ingest(request, drafts, source)
        del drafts
        # BatchAccepted's JSON, written directly: through response_model FastAPI would dump, validate
        # and dump again every result (the same bytes as its JSONResponse; tested against the model)
        return Response(batch_json(results), status_code=202, media_type="application/json")

    return router
