"""Shared by the shutdown tests (tests/ingest/test_shutdown.py, tests/notify/test_shutdown.py): stop a
real service process with SIGTERM and check it stopped cleanly within its budget."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

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
