"""intake asks once per call whether DEBUG lines are logged (the ninth session's: no per-alert no-op
call when they are not); the answer follows the configured level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from redis.asyncio import Redis
from structlog.testing import LogCapture
from vigil_ingest import intake
from vigil_ingest.drafts import AlertDraft


@pytest.fixture
def capture_at() -> Iterator[object]:
    captured = LogCapture()

    def configure(level: int) -> LogCapture:
        structlog.configure(
            processors=[captured],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=False,
        )
        return captured

    yield configure
    structlog.reset_defaults()


def _draft(i: int) -> AlertDraft:
    return AlertDraft(
        source_kind="api", source_name="t", title=f"T{i}", text=f"Alert text {i}.", url=f"https://x.test/{i}"
    )


@pytest.mark.parametrize(("level", "debug_lines"), [(logging.DEBUG, 3), (logging.INFO, 0), (logging.WARNING, 0)])
async def test_per_alert_lines_follow_the_level(redis: Redis, capture_at: object, level: int, debug_lines: int) -> None:
    captured = capture_at(level)  # type: ignore[operator]
    assert intake._debug_enabled() is (level <= logging.DEBUG)
    await intake.accept(redis, [_draft(i) for i in range(3)])
    events = [e["event"] for e in captured.entries]
    assert events.count("alert published") == debug_lines
    assert events.count("alerts accepted") == (1 if level <= logging.INFO else 0)
