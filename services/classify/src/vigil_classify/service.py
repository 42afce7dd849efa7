"""The classify service: consumes ``AlertReceived``, publishes ``AlertClassified``.

A thin entrypoint over the pure classifier (:mod:`vigil_classify.engine`): decode, call, encode.

The hot path is one plain loop per read batch (the worker's batch handler mode: no task, semaphore or
context binding per alert). Each result is published as the classifier's JSON payload, without
validating the ~27 nested models of :class:`~vigil_shared.events.Classification` again: the payload
is the JSON form of the validated model (``tests/classify/test_payload.py``). The service writes each
entry's bytes right after classifying the alert (:func:`classified_data`: no event object, so the
result's objects are freed at once instead of living, and being traversed by the garbage collector,
until the batch's commit). Those bytes are checked to be byte-identical to the validated event's
entry and to parse back as the same ``AlertClassified`` (``tests/classify/test_service_redis.py``,
``tests/shared/test_classify_publication.py`` for :func:`classified_event`, the same serialiser).
Consumers validate ``AlertClassified`` at their edge, as always.

The batch loop itself runs in the classifier's compiled module (:func:`entry_writer`,
:class:`~vigil_classify.writer.EntryWriter`, compiled): the usual alert's entry is written there, its labels
as JSON text, with the same bytes as :func:`classified_data` (``tests/classify/test_perf8_svc_writer.py``);
any other alert is :func:`classified_data`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

import orjson
import structlog
from pydantic import TypeAdapter
from pydantic_core import to_json
from vigil_shared import streams
from vigil_shared.envelope import encode_body
from vigil_shared.events import (
    SCHEMA_VERSION,
    AlertClassified,
    AlertReceived,
    Certainty,
    Severity,
    Urgency,
    new_event_id,
    utcnow,
)
from vigil_shared.runtime import Service, ServiceContext, ServiceParts
from vigil_shared.worker import Publication, StreamWorker

if TYPE_CHECKING:
    from vigil_classify.engine import ClassificationPayload, Classifier
    from vigil_classify.writer import EntryWriter


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
        return _classified_json(
            self.event_id,
            self.occurred_at,
            self.schema_version,
            self.correlation_id,
            self.producer,
            self.alert,
            self.classification,
        )


def _classified_json(
    event_id: str,
    occurred_at: datetime,
    schema_version: int,
    correlation_id: str,
    producer: str,
    alert: AlertReceived,
    classification: Any,
    now: bool = False,
) -> bytes:
    """The JSON of an ``AlertClassified`` with these fields, the classification as the classifier's
    payload (the one serialiser of :class:`ClassifiedPayload` and :func:`classified_data`).

    orjson writes the alert's fields itself when it writes them as pydantic does (see
    :func:`_orjson_writes_as_pydantic`: about a third of pydantic's cost); otherwise, or if orjson
    refuses a value (an int beyond 64 bits, a lone surrogate), the alert is pydantic's own JSON.
    ``now``: ``occurred_at`` is ``utcnow()`` (UTC: orjson writes it as pydantic does).
    """
    if _orjson_writes_as_pydantic(alert) and (now or _orjson_datetime(occurred_at)):
        try:
            return orjson.dumps(
                {
                    "event_id": event_id,
                    "occurred_at": occurred_at,
                    "schema_version": schema_version,
                    "correlation_id": correlation_id,
                    "producer": producer,
                    "alert": alert.__dict__,
                    "classification": classification,
                },
                option=orjson.OPT_UTC_Z,
            )
        except orjson.JSONEncodeError:
            pass
    return orjson.dumps(
        {
            "event_id": event_id,
            "occurred_at": orjson.Fragment(to_json(occurred_at)),
            "schema_version": schema_version,
            "correlation_id": correlation_id,
            "producer": producer,
            "alert": orjson.Fragment(_ALERT_JSON(alert)),
            "classification": classification,
        }
    )


_ALERT_JSON = AlertReceived.__pydantic_serializer__.to_json


def _orjson_datetime(moment: datetime | None) -> bool:
    """Whether orjson (``OPT_UTC_Z``) writes ``moment`` as pydantic does: always, except for a UTC
    offset that is not a whole number of minutes (pydantic writes +00:00 for 30 s, orjson +00:01).
    A datetime read from JSON has a whole-minute offset (or none) anyway."""
    if moment is None:
        return True
    offset = moment.utcoffset()
    return offset is None or (offset.seconds % 60 == 0 and not offset.microseconds)


def _orjson_writes_as_pydantic(alert: AlertReceived) -> bool:
    """Whether ``orjson.dumps(alert.__dict__, option=OPT_UTC_Z)`` is ``AlertReceived``'s pydantic JSON.

    A validated ``AlertReceived`` holds its fields in its ``__dict__`` in field order (no extra
    attributes: the model forbids them), so orjson writes the same keys in the same order; strings,
    ints, ``None`` and datetimes come out the same (tested on every code point, the datetime edge
    cases and generated alerts). What could differ is left to pydantic: a CAP block (nested models),
    ``extra`` values (any JSON: floats, nested data), a subclass, datetimes with sub-minute offsets.
    """
    fields = alert.__dict__
    if type(alert) is not AlertReceived or fields["cap"] is not None or fields["extra"]:
        return False
    # _orjson_datetime of occurred_at and published, written out (this runs for every alert); UTC
    # (pydantic's own UTC, which JSON's "Z" gives, or datetime's) needs no utcoffset() call
    occurred_at = fields["occurred_at"]
    tz = occurred_at.tzinfo
    if tz is not _PYDANTIC_UTC and tz is not UTC:
        offset = occurred_at.utcoffset()
        if offset is not None and (offset.seconds % 60 or offset.microseconds):
            return False
    published = fields["published"]
    return published is None or published.tzinfo is _PYDANTIC_UTC or _orjson_datetime(published)


_PYDANTIC_UTC = TypeAdapter(datetime).validate_json(b'"2000-01-01T00:00:00Z"').tzinfo
"""The ``tzinfo`` pydantic gives a UTC datetime read from JSON (one shared instance; if a pydantic
version made a new one each time, the check above would only take the longer way)."""


log = structlog.get_logger("vigil.classify")
_PRODUCER = "classify"


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


def alert_payload(classifier: Classifier, alert: AlertReceived) -> ClassificationPayload:
    """``classifier.classify_payload(alert.text, **classifier_inputs(alert))``, the keywords spelt out:
    no dict is built and unpacked per alert (about half a microsecond of the service's hot path)."""
    cap = alert.cap
    if cap is None:  # the CAP keywords' defaults are None
        return classifier.classify_payload(alert.text, title=alert.title, issuer=alert.issuer, alert_id=alert.alert_id)
    return classifier.classify_payload(
        alert.text,
        title=alert.title,
        issuer=alert.issuer,
        alert_id=alert.alert_id,
        cap_urgency=cap.urgency,
        cap_severity=cap.severity,
        cap_certainty=cap.certainty,
    )


def classified_event(classifier: Classifier, alert: AlertReceived) -> ClassifiedPayload:
    """The ``AlertClassified`` of ``alert``, without re-validating what is already valid (the alert was
    validated at the worker's edge; the payload is the JSON form of a valid ``Classification``)."""
    payload = alert_payload(classifier, alert)
    # The envelope is validated as usual (the alert instance is kept as it is, the payload dict is
    # taken without looking inside): as cheap as model_construct here, which in pydantic 2.14 loops
    # over the fields in Python and inspects each default factory's signature on every call.
    # cast: the payload is a TypedDict of JSON data, which is what a dict[str, Any] field holds
    return ClassifiedPayload(
        correlation_id=alert.correlation_id,
        producer=_PRODUCER,
        alert=alert,
        classification=cast("dict[str, Any]", payload),
    )


_EVENT_TYPE = AlertClassified.event_type


def classified_data(classifier: Classifier, alert: AlertReceived) -> bytes:
    """The ``__data__`` value of the ``AlertClassified`` of ``alert``: what :func:`classified_event`
    then :func:`~vigil_shared.envelope.encode_data` give, without the event object (the service's
    path for all but the usual alerts, which :func:`entry_writer` writes with the same bytes). The
    envelope's fields need no validation here: fresh ids, the current time, the schema version, a
    constant producer and the correlation id of an alert validated at the worker's edge. Tested byte
    for byte against the validated event (``tests/classify/test_service_redis.py``)."""
    return payload_data(classifier, alert, alert_payload(classifier, alert))


def payload_data(classifier: Classifier, alert: AlertReceived, payload: ClassificationPayload) -> bytes:
    """:func:`classified_data` with the alert's payload already made (the compiled writer's fallback:
    :class:`~vigil_classify.writer.EntryWriter`)."""
    correlation_id = alert.correlation_id
    body = _classified_json(new_event_id(), utcnow(), SCHEMA_VERSION, correlation_id, _PRODUCER, alert, payload, True)
    return encode_body(correlation_id, _EVENT_TYPE, body)


def entry_writer(classifier: Classifier, out_stream: str) -> EntryWriter:
    """The compiled writer of the service's entries (:class:`~vigil_classify.writer.EntryWriter`): its
    usual alerts' bytes are :func:`classified_data`'s (tested on the bench texts and odd inputs), in
    :func:`~vigil_shared.envelope.encode_body`'s envelope."""
    from vigil_classify.writer import EntryWriter

    return EntryWriter(
        classifier, out_stream, Publication, _PRODUCER, _EVENT_TYPE, _PYDANTIC_UTC, payload_data, encode_body
    )


def validated_event(classifier: Classifier, alert: AlertReceived) -> AlertClassified:
    """The fully validated ``AlertClassified`` of ``alert`` (the reference :func:`classified_event`
    is tested against)."""
    result = classifier.classify(alert.text, **classifier_inputs(alert))
    return AlertClassified(correlation_id=alert.correlation_id, producer="classify", alert=alert, classification=result)


async def build(ctx: ServiceContext) -> ServiceParts:
    from vigil_classify import native
    from vigil_classify.engine import Classifier  # loads the gazetteer once per process

    classifier = Classifier()
    # the compiled modules cost ~40 % less CPU per alert; say which ones run (vigil classify-compile)
    log.info("classifier loaded", native=native.active(), version=classifier.version)
    # each entry's bytes written at once, while the classifier's result is still in the CPU caches; no
    # event object is kept until the commit (the result's objects are freed at once); an alert whose
    # classification or encoding raises fails alone (retried, then dead-lettered), the others flow
    outcomes = entry_writer(classifier, streams.ALERTS_CLASSIFIED).outcomes

    async def handle_batch(alerts: Sequence[AlertReceived]) -> list[Sequence[Publication] | BaseException]:
        return outcomes(alerts)

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
