"""The classify service: consumes ``AlertReceived``, publishes ``AlertClassified``.

A thin entrypoint over the pure classifier (:mod:`vigil_classify.engine`): decode, call, encode.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil_shared import streams
from vigil_shared.events import AlertClassified, AlertReceived
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker


async def build(ctx: ServiceContext) -> ServiceParts:
    from vigil_classify.engine import Classifier  # loads the gazetteer once per process

    classifier = Classifier()

    async def handle(alert: AlertReceived) -> Sequence[Publication]:
        cap = alert.cap
        result = classifier.classify(
            alert.text,
            title=alert.title,
            issuer=alert.issuer,
            alert_id=alert.alert_id,
            cap_urgency=cap.urgency if cap else None,
            cap_severity=cap.severity if cap else None,
            cap_certainty=cap.certainty if cap else None,
        )
        event = AlertClassified(
            correlation_id=alert.correlation_id, producer="classify", alert=alert, classification=result
        )
        return [Publication(streams.ALERTS_CLASSIFIED, event)]

    worker = StreamWorker(
        service="classify",
        stream=streams.ALERTS_RECEIVED,
        group=streams.GROUP_CLASSIFY,
        model=AlertReceived,
        handler=handle,
        settings=ctx.settings,
        description="Classifies each received alert: threat types, targets, places, CAP urgency/severity.",
    )
    return ServiceParts(workers=[worker])


SERVICE = Service(name="classify", build=build, description="AlertReceived in; AlertClassified out")
