"""Test-only service ``chaos-classify``: the real classify service with two test knobs.

It is never installed: the chaos tests put this directory on ``PYTHONPATH`` of the processes they
start, and the ``*.dist-info`` next to it registers the ``vigil.services`` entry point, so
``vigil run chaos-classify`` finds it like any plugin. Production code carries no fault hooks.

* ``VIGIL_CHAOS_FAIL_FILE``: while this file exists, the handler raises for every alert whose id is
  one of the lines in it (the "bug" is "fixed" by deleting the file).
* ``VIGIL_CHAOS_DELAY_MS``: sleep this long per alert, before handling it (keeps batches in flight long enough that a
  SIGKILL or SIGTERM lands in the middle of one).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from vigil_classify.service import build as classify_build
from vigil_shared.events import AlertReceived
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication


class InjectedFault(RuntimeError):
    pass


def _faulty_ids(fail_file: str) -> list[str]:
    path = Path(fail_file)
    return path.read_text().split() if path.exists() else []


async def build(ctx: ServiceContext) -> ServiceParts:
    parts = await classify_build(ctx)
    worker = parts.workers[0]
    fail_file = os.environ.get("VIGIL_CHAOS_FAIL_FILE")
    delay_s = float(os.environ.get("VIGIL_CHAOS_DELAY_MS", "0")) / 1000

    if worker.batch_handler is not None:  # classify's batch mode: faults are per alert, as results
        real_batch = worker.batch_handler

        async def batch_handler(alerts: Sequence[AlertReceived]) -> Sequence[Sequence[Publication] | BaseException]:
            faulty = set(_faulty_ids(fail_file)) if fail_file else set()
            out: list[Sequence[Publication] | BaseException] = []
            for alert in alerts:
                if delay_s:
                    await asyncio.sleep(delay_s)
                if alert.alert_id in faulty:
                    out.append(InjectedFault(f"injected fault for {alert.alert_id}"))
                else:
                    out.extend(await real_batch([alert]))
            return out

        worker.batch_handler = batch_handler
        return parts

    real = worker.handler
    assert real is not None

    async def handler(alert: AlertReceived) -> Sequence[Publication]:
        if delay_s:
            await asyncio.sleep(delay_s)
        if fail_file and alert.alert_id in _faulty_ids(fail_file):
            raise InjectedFault(f"injected fault for {alert.alert_id}")
        return await real(alert)

    worker.handler = handler
    return parts


SERVICE = Service(name="chaos-classify", build=build, description="classify + test fault injection")
