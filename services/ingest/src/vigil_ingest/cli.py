"""``vigil send FILE|-``: submit alerts from a file or stdin, for scripts and pipes.

The input is detected by content (JSON alert or list of alerts, RSS/Atom feed, CAP 1.2 alert, HTML
or plain text) and parsed locally first, so bad input — including hostile XML — is refused with a
clear message and exit code 1 before anything is sent.

By default the alerts are POSTed to the ingest HTTP API (``--url``, ``VIGIL_INGEST_URL``, default
``http://127.0.0.1:8000``), so the running service's limits and configuration apply. ``--direct``
instead registers and publishes them straight into Redis (``REDIS_URL``) with the same dedup and
publishing code the service uses — handy when no ingest service runs.

The API needs an API key with role ``ingest`` (``--api-key`` / ``VIGIL_API_KEY``, sent as a Bearer
token) unless the server runs with ``VIGIL_AUTH_DISABLED=true``; the key's name becomes the source.

Exit codes: 0 sent (duplicates included), 1 bad input (nothing sent), 2 ingest or Redis unreachable,
failing, or refusing the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

DEFAULT_URL = "http://127.0.0.1:8000"

_CONTENT_TYPES = {
    "json": "application/json",
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "cap": "application/cap+xml",
    "html": "text/html",
    "text": "text/plain; charset=utf-8",
}


class SendError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Log lines go to stderr (``VIGIL_LOG_LEVEL``, default WARNING): stdout carries the results."""
    saved = structlog.get_config()
    level = logging.getLevelName(os.environ.get("VIGIL_LOG_LEVEL", "WARNING").upper())
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else logging.WARNING),
        logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


def _read(path: str, limit: int) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        file = Path(path)
        if not file.is_file():
            raise SendError(f"{path}: no such file", 1)
        with file.open("rb") as fh:
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise SendError(f"{path}: input exceeds the limit of {limit} bytes (--max-bytes)", 1)
    return data


def _results_from_http(
    url: str, body: bytes, content_type: str, source: str | None, timeout: float, api_key: str | None = None
) -> list[dict[str, Any]]:
    import httpx

    endpoint = url.rstrip("/") + "/v1/alerts:batch"
    params = {"source": source} if source else None
    headers = {"Content-Type": content_type}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        response = httpx.post(endpoint, content=body, headers=headers, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SendError(
            f"cannot reach ingest at {url}: {exc} (is it running? --url, or --direct to publish to Redis)", 2
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if response.status_code in (401, 403, 429):
            hint = " (--api-key or VIGIL_API_KEY)" if response.status_code != 429 else ""
            raise SendError(f"ingest refused the request ({response.status_code}): {detail}{hint}", 2)
        code = 1 if 400 <= response.status_code < 500 else 2
        raise SendError(f"ingest refused the input ({response.status_code}): {detail}", code)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _results_direct(drafts: list[Any]) -> list[dict[str, Any]]:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from vigil_ingest.intake import accept
    from vigil_ingest.settings import IngestSettings

    settings = IngestSettings()

    async def go() -> list[dict[str, Any]]:
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
        try:
            results = await accept(redis, drafts, ttl_s=settings.dedup_ttl_s, maxlen=settings.stream_maxlen)
        finally:
            await redis.aclose()
        return [r.as_dict() for r in results]

    try:
        return asyncio.run(go())
    except (RedisError, OSError) as exc:
        raise SendError(f"cannot publish to Redis at REDIS_URL: {exc}; nothing was published", 2) from None


def send_input(
    data: bytes,
    *,
    name: str,
    url: str = DEFAULT_URL,
    direct: bool = False,
    source: str | None = None,
    max_bytes: int,
    timeout: float = 30.0,
    api_key: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``data`` locally, then send it; returns (detected kind, one result dict per alert)."""
    from vigil_ingest.detect import detect_kind, parse_input
    from vigil_ingest.errors import InvalidInput

    try:
        kind = detect_kind(data)
        default_source = source or ("cli" if kind in ("json", "text", "html") else None)
        parsed = parse_input(data, source_name=default_source, max_bytes=max_bytes)
    except InvalidInput as exc:
        raise SendError(f"{name}: {exc}", 1) from None
    if not parsed.drafts:
        if parsed.cap_links:
            raise SendError(
                f"{name}: an index of {len(parsed.cap_links)} CAP documents; send the CAP documents "
                "themselves, or configure the index as a feed (VIGIL_INGEST_FEEDS_FILE)",
                1,
            )
        raise SendError(f"{name}: the {parsed.kind} document holds no alert", 1)
    if direct:
        return parsed.kind, _results_direct(list(parsed.drafts))
    return parsed.kind, _results_from_http(url, data, _CONTENT_TYPES[parsed.kind], default_source, timeout, api_key)


def register(app: typer.Typer) -> None:
    @app.command("send")
    def send(
        file: Annotated[str, typer.Argument(help="File with the alert(s), or - for stdin.")],
        url: Annotated[str, typer.Option(envvar="VIGIL_INGEST_URL", help="Ingest HTTP API to post to.")] = DEFAULT_URL,
        direct: Annotated[
            bool, typer.Option("--direct", help="Publish straight into Redis (REDIS_URL), not via the API.")
        ] = False,
        source: Annotated[
            str | None, typer.Option(help="Source name (default: cli; a feed's title; JSON 'source' wins).")
        ] = None,
        api_key: Annotated[
            str | None,
            typer.Option(
                envvar="VIGIL_API_KEY", help="API key (role ingest) for the HTTP API; its name is the source."
            ),
        ] = None,
        max_bytes: Annotated[int, typer.Option(help="Refuse larger inputs.")] = 5_000_000,
        timeout: Annotated[float, typer.Option(help="HTTP timeout (s).")] = 30.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    ) -> None:
        """Send alerts from FILE (or - for stdin): text, JSON, RSS/Atom or CAP, detected by content.

        Prints one line per alert: its status (new, revision, duplicate), alert_id and title.
        Exit 0 when sent (duplicates included), 1 for bad input (nothing sent), 2 when ingest or
        Redis cannot be reached.
        """
        name = "stdin" if file == "-" else file
        try:
            with _logs_to_stderr():
                data = _read(file, max_bytes)
                kind, results = send_input(
                    data,
                    name=name,
                    url=url,
                    direct=direct,
                    source=source,
                    max_bytes=max_bytes,
                    timeout=timeout,
                    api_key=api_key,
                )
        except SendError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        if as_json:
            typer.echo(json.dumps({"kind": kind, "results": results}, indent=2))
            return
        for r in results:
            rev = f" rev {r['revision']}" if r.get("revision", 1) > 1 else ""
            typer.echo(f"{r['status']:<9} {r['alert_id']}{rev}  {r.get('title') or ''}".rstrip())
        counts = {s: sum(1 for r in results if r["status"] == s) for s in ("new", "revision", "duplicate")}
        typer.echo(
            f"{len(results)} alert{'s' if len(results) != 1 else ''} from {name} ({kind}): "
            f"{counts['new']} new, {counts['revision']} revision(s), {counts['duplicate']} duplicate(s)",
            err=True,
        )
