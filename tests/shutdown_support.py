"""Shared by the shutdown tests: stop a real service process with SIGTERM and check it stopped cleanly
within its budget (tests/ingest/test_shutdown.py, tests/notify/test_shutdown.py); cancel a long-lived
loop and check it ended (the lost-cancellation tests, vigil_shared.cancellation)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest


def terminate_within(proc: subprocess.Popen[bytes], service: str, within_s: float) -> float:
    """Send SIGTERM and wait up to ``within_s`` for the process to exit; the seconds it took."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(within_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{service} had not stopped {within_s} s after SIGTERM")
    return time.monotonic() - started


def assert_stopped_cleanly(proc: subprocess.Popen[bytes], log: Path, took: float, within_s: float) -> None:
    """Exit code 0 within the budget, the stop logged, no background loop crashed, and none still
    running after the stop asked it to end (``Host.stop`` names such a loop)."""
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert took < within_s
    assert "stopped" in text
    assert "background loop crashed" not in text, text[-3000:]
    assert "still running after the stop" not in text, text[-3000:]


async def cancel_and_expect_end(task: asyncio.Task[Any], timeout_s: float, why: str) -> None:
    """Cancel ``task`` and assert it ended within ``timeout_s``, cancelled (``why``: the failure's message)."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    assert done, why
    assert task.cancelled()
