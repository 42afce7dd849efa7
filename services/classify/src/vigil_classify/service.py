"""The classify service: consumes ``AlertReceived``, publishes ``AlertClassified``.

A thin entrypoint over the pure classifier (:mod:`vigil_classify.engine`): decode, call, encode.

The hot path is one plain loop per read batch (the worker's batch handler mode: no task, semaphore or
context binding per alert). Each result is published as the classifier's JSON payload, without
validating the ~27 nested models of :class:`~vigil_shared.events.Classification` again: the payload
is the JSON form of the validated model (``tests/classify/test_payload.py``), and the published
bytes are checked to be byte-identical to the validated event's and to parse back as the same
``AlertClassified`` (``tests/shared/test_classify_publication.py``). Consumers validate
``AlertClassified`` at their edge, as always.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

import orjson
from pydantic_core import to_json
from vigil_shared import streams
from vigil_shared.events import AlertClassified, AlertReceived, Certainty, Severity, Urgency
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker

if TYPE_CHECKING:
    from vigil_classify.engine import Classifier


class ClassifiedPayload(AlertClassified):
    """``AlertClassified`` with its classification held as the classifier's JSON payload.

    Same ``event_type``, fields and JSON as :class:`AlertClassified`; only ever built by
    :func:`classified_event` from a validated alert and a payload (the envelope fields are
    validated, the payload is not looked into), never parsed from a stream: consumers read
    ``AlertClassified``. Its JSON is written by orjson around the alert's own pydantic JSON: pydantic
    serialises a plain dict by inferring each value's type (~20 us for a classification), orjson in
    ~5 us, with the same bytes (floats, escapes, non-ASCII; tested against the validated event).
    """

    classification: dict[str, Any]  # type: ignore[assignment]

    def model_dump_json(self, **kwargs: Any) -> str:
        if kwargs:  # indent, include, ...: pydantic's own
            return super().model_dump_json(**kwargs)
        return self.json_bytes().decode()

    def json_bytes(self) -> bytes:
        """``model_dump_json()``, as bytes."""
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "occurred_at": orjson.Fragment(to_json(self.occurred_at)),
                "schema_version": self.schema_version,
                "correlation_id": self.correlation_id,
                "producer": self.producer,
                "alert": orjson.Fragment(_ALERT_JSON(self.alert)),
                "classification": self.classification,
            }
        )


_ALERT_JSON = AlertReceived.__pydantic_serializer__.to_json


class ClassifierInputs(TypedDict):
    """What the classifier takes from an alert besides its text (the source's CAP values win)."""

    title: str
    issuer: str | None
    alert_id: str
    cap_urgency: Urgency | None
    cap_severity: Severity | None
    cap_certainty: Certainty | None


def classifier_inputs(alert: AlertReceived) -> ClassifierInputs:
    cap = alert.cap
    return {
        "title": alert.title,
        "issuer": alert.issuer,
        "alert_id": alert.alert_id,
        "cap_urgency": cap.urgency if cap else None,
        "cap_severity": cap.severity if cap else None,
        "cap_certainty": cap.certainty if cap else None,
    }


def classified_event(classifier: Classifier, alert: AlertReceived) -> AlertClassified:
    """The ``AlertClassified`` of ``alert``, without re-validating what is already valid (the alert was
    validated at the worker's edge; the payload is the JSON form of a valid ``Classification``)."""
    payload = classifier.classify_payload(alert.text, **classifier_inputs(alert))
    # The envelope is validated as usual (the alert instance is kept as it is, the payload dict is
    # taken without looking inside): as cheap as model_construct here, which in pydantic 2.14 loops
    # over the fields in Python and inspects each default factory's signature on every call.
    # cast: the payload is a TypedDict of JSON data, which is what a dict[str, Any] field holds
    return ClassifiedPayload(
        correlation_id=alert.correlation_id,
        producer="classify",
        alert=alert,
        classification=cast("dict[str, Any]", payload),
    )


def validated_event(classifier: Classifier, alert: AlertReceived) -> AlertClassified:
    """The fully validated ``AlertClassified`` of ``alert`` (the reference :func:`classified_event`
    is tested against)."""
    result = classifier.classify(alert.text, **classifier_inputs(alert))
    return AlertClassified(correlation_id=alert.correlation_id, producer="classify", alert=alert, classification=result)


async def build(ctx: ServiceContext) -> ServiceParts:
    from vigil_classify.engine import Classifier  # loads the gazetteer once per process

    classifier = Classifier()
    out_stream = streams.ALERTS_CLASSIFIED

    async def handle_batch(alerts: Sequence[AlertReceived]) -> list[Sequence[Publication] | BaseException]:
        results: list[Sequence[Publication] | BaseException] = []
        append = results.append
        for alert in alerts:
            try:
                event = classified_event(classifier, alert)
            except Exception as exc:  # this alert fails (retried, then dead-lettered); the others flow
                append(exc)
                continue
            append((Publication(out_stream, event),))
        return results

    worker = StreamWorker(
        service="classify",
        stream=streams.ALERTS_RECEIVED,
        group=streams.GROUP_CLASSIFY,
        model=AlertReceived,
        batch_handler=handle_batch,
        settings=ctx.settings,
        description="Classifies each received alert: threat types, targets, places, CAP urgency/severity.",
    )
    return ServiceParts(workers=[worker])


SERVICE = Service(name="classify", build=build, description="AlertReceived in; AlertClassified out")
