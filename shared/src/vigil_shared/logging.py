"""Structured logging: JSON in containers, readable in a terminal, correlation ids bound per alert.

Bind an alert's ids with ``structlog.contextvars.bound_contextvars(correlation_id=..., alert_id=...)``
around the work done for it; every line logged inside carries them, in every service.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def _escape_controls(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Hostile text cannot forge log lines: newlines and control characters are escaped."""
    for k, v in event_dict.items():
        if isinstance(v, str) and any(c < " " and c != "\t" for c in v):
            event_dict[k] = v.encode("unicode_escape").decode("ascii")
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", service: str | None = None) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if use_json:
        processors += [_escape_controls, structlog.processors.JSONRenderer()]
    else:
        processors += [_escape_controls, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    # FastStream and uvicorn log through the stdlib; keep them quiet and on stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
