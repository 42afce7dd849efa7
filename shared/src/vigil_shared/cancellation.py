"""Stopping long-lived loops whose cancellation was lost inside a tick.

A task's cancellation is one ``CancelledError`` thrown into the await it is suspended in. Something
inside that await can swallow it, and then the task runs on as if nothing happened, with the request
still counted (``Task.cancelling()`` stays above zero; only ``Task.uncancel()``, which
``asyncio.timeout`` and ``TaskGroup`` call for their own requests, lowers it). Two ways seen here:

* **Python 3.11's** ``asyncio.wait_for`` returns the inner result, dropping the cancellation, when its
  inner task finishes in the same loop iteration as the cancel lands (CPython gh-86296, fixed in 3.12
  by rewriting ``wait_for`` on ``asyncio.timeout``). redis-py 8.1's asyncio connection sends every
  command through ``asyncio.wait_for(..., socket_timeout)`` (``socket_timeout`` defaults to 5 s), so
  any redis-py call can lose a cancellation that lands while its command is being written: an
  ``MGET`` cancelled 1, 2 or 3 loop iterations after it started returns its reply with the request
  still counted, every time (with ``socket_timeout=None`` the same cancels raise). Under load (a loop
  of ``MGET`` and a 50 ms sleep, cancelled at random moments with two CPU hogs beside it) 6 of 300
  cancellations were lost.
* A cancellation that lands on one of the Redis client's own timeouts can come back as one of its
  errors (``redis.exceptions.TimeoutError``), which a loop's ``except Exception`` retries.

A loop that is stopped by cancellation therefore calls :func:`raise_if_cancel_requested` once per
tick, after the tick's ``try``/``except`` (so both ways are caught) and before it waits for the next:
a lost cancellation then ends the loop at the end of the tick it landed in, instead of never (a
service stopping only when killed at its stop timeout, a test's ``await task`` hanging).
"""

from __future__ import annotations

import asyncio


def raise_if_cancel_requested() -> None:
    """Raise :class:`asyncio.CancelledError` if the current task has a cancel request pending that no
    ``CancelledError`` delivered (see the module docstring); otherwise do nothing."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
