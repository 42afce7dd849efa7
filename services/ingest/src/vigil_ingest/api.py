"""Ingest's HTTP API: ``POST /v1/alerts`` (JSON or text/plain) and ``POST /v1/alerts:batch``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.asyncio import Redis

from vigil_ingest.cleaning import detect_language, to_text
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.intake import IntakeResult, accept
from vigil_ingest.settings import IngestSettings


class AlertIn(BaseModel):
    """An alert posted to the API. Unknown fields are kept in ``extra``."""

    model_config = ConfigDict(extra="allow")

    title: str = Field(default="", max_length=1000)
    text: str = Field(min_length=1)
    url: str | None = Field(default=None, max_length=2000)
    issuer: str | None = Field(default=None, max_length=300)
    published: datetime | None = None
    language: str | None = Field(default=None, max_length=20)
    source: str | None = Field(default=None, max_length=200)
    id: str | None = Field(default=None, max_length=300, description="The source's own id of the alert.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty: send the alert's text")
        return v


class AlertAccepted(BaseModel):
    alert_id: str
    revision: int
    status: str = Field(description="new, revision (a changed alert) or duplicate (already published)")
    correlation_id: str | None


class BatchAccepted(BaseModel):
    results: list[AlertAccepted]


def draft_from_api(item: AlertIn, default_source: str) -> AlertDraft:
    extra: dict[str, Any] = dict(item.model_extra or {})
    text = to_text(item.text)
    if not text.strip():
        raise ValueError("text is empty after removing markup")
    title = to_text(item.title) if item.title else ""
    return AlertDraft(
        source_kind="api",
        source_name=item.source or default_source,
        issuer=item.issuer,
        title=title,
        text=text,
        url=item.url,
        published=item.published,
        language=detect_language(f"{title}\n{text}", item.language),
        extra=extra,
        source_key=item.id,
    )


def _result(r: IntakeResult) -> AlertAccepted:
    return AlertAccepted(alert_id=r.alert_id, revision=r.revision, status=r.status, correlation_id=r.correlation_id)


def _problem(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _problem(413, f"body of {declared} bytes exceeds the limit of {limit} bytes (VIGIL_INGEST_MAX_BODY_BYTES)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _problem(413, f"body exceeds the limit of {limit} bytes (VIGIL_INGEST_MAX_BODY_BYTES)")
    return bytes(body)


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5])


def build_router(redis: Redis, settings: IngestSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["alerts"])

    async def parse_items(request: Request, *, batch: bool) -> list[AlertIn]:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        body = await _read_body(request, settings.max_body_bytes)
        if ctype == "text/plain" and not batch:
            text = body.decode("utf-8", errors="replace")
            if not text.strip():
                raise _problem(422, "text is empty: send the alert's text")
            lines = text.strip().split("\n", 1)
            title, rest = (lines[0].strip(), lines[1]) if len(lines) == 2 and len(lines[0]) < 200 else ("", text)
            return [AlertIn(title=title, text=rest)]
        if ctype not in ("application/json", "application/cap+json") and not ctype.endswith("+json"):
            accepted = "application/json" + ("" if batch else " or text/plain")
            raise _problem(415, f"content type {ctype or 'missing'} is not supported; send {accepted}")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _problem(400, f"malformed JSON: {exc}") from exc
        raw_items: Any = data.get("alerts") if batch and isinstance(data, dict) else data
        if batch:
            if not isinstance(raw_items, list):
                raise _problem(422, 'a batch is a JSON array of alerts (or {"alerts": [...]})')
            if not raw_items:
                raise _problem(422, "the batch is empty")
            if len(raw_items) > settings.max_batch_items:
                raise _problem(413, f"batch of {len(raw_items)} alerts exceeds {settings.max_batch_items}")
        else:
            if not isinstance(raw_items, dict):
                raise _problem(422, "an alert is a JSON object with at least a 'text' field")
            raw_items = [raw_items]
        items: list[AlertIn] = []
        for i, raw in enumerate(raw_items):
            try:
                items.append(AlertIn.model_validate(raw))
            except ValidationError as exc:
                where = f"alert {i}: " if batch else ""
                raise _problem(422, where + _validation_detail(exc)) from exc
        return items

    async def ingest(items: list[AlertIn]) -> list[AlertAccepted]:
        try:
            drafts = [draft_from_api(i, settings.source_name) for i in items]
        except ValueError as exc:
            raise _problem(422, str(exc)) from exc
        results = await accept(redis, drafts, ttl_s=settings.dedup_ttl_s, maxlen=settings.stream_maxlen)
        return [_result(r) for r in results]

    @router.post(
        "/alerts", response_model=AlertAccepted, status_code=202,
        summary="Submit one alert (JSON or text/plain)",
        responses={400: {"description": "malformed JSON"}, 413: {"description": "body too large"},
                   415: {"description": "unsupported content type"}, 422: {"description": "invalid alert"}},
    )
    async def post_alert(request: Request) -> AlertAccepted:
        items = await parse_items(request, batch=False)
        return (await ingest(items))[0]

    @router.post("/alerts:batch", response_model=BatchAccepted, status_code=202, summary="Submit many alerts")
    async def post_batch(request: Request) -> BatchAccepted:
        items = await parse_items(request, batch=True)
        return BatchAccepted(results=await ingest(items))

    return router
