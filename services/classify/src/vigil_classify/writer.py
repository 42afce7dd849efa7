"""The classify service's entries: each alert's ``AlertClassified`` ``__data__`` value and its
publication, written by compiled code (this module is in classify's native build; the service module
itself is interpreted, where each call and slot write costs thousands of instructions an alert).

The usual alert's JSON is written here with its labels as JSON text (:meth:`Classifier._payload` with
``fragments``), in the envelope of the shared ``vigil_shared.envelope.encode_body``; any other alert is
the service's own ``classified_data`` path. Same bytes either way
(``tests/classify/test_perf8_svc_writer.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from time import time_ns
from typing import Any, Final, cast

import orjson
from vigil_shared.events import SCHEMA_VERSION, AlertReceived, new_event_id

from vigil_classify.engine import ClassificationPayload, Classifier

_new_object: Final = object.__new__
_UTC_Z: Final = orjson.OPT_UTC_Z


class EntryWriter:
    """Writes the ``__data__`` value of each alert's ``AlertClassified`` entry, and its publication.

    The usual alert (exactly an ``AlertReceived``, no CAP block, no ``extra`` values, its datetimes in
    UTC as JSON gives them, or absent) is written here: the JSON as
    ``vigil_classify.service._classified_json`` writes it (orjson, the event time ``datetime.now(UTC)``)
    in the envelope ``vigil_shared.envelope.encode_body`` makes, each checked at start-up on a sample and
    tested on random values; anything else, or a value orjson refuses, is the service's own
    ``fallback(classifier, alert, payload)`` (pydantic's JSON where orjson's could differ).
    """

    def __init__(
        self,
        classifier: Classifier,
        out_stream: str,
        publication: type,
        producer: str,
        event_type: str,
        pydantic_utc: object,
        fallback: Callable[[Classifier, AlertReceived, ClassificationPayload], bytes],
        envelope: Callable[[str, str, bytes], bytes],
    ) -> None:
        """``publication``: the stream worker's ``Publication`` (a frozen dataclass whose three slots are
        set in field order, as its own ``__init__`` does; checked here, else its ``__init__`` is called);
        ``envelope``: ``vigil_shared.envelope.encode_body``; ``fallback``: the service's
        ``payload_data``."""
        self.classifier = classifier
        self.out_stream = out_stream
        self.publication = publication
        self.producer = producer
        self.event_type = event_type
        self.pydantic_utc = pydantic_utc
        self.fallback = fallback
        self.envelope = envelope
        self.second = -1  # the second whose date and time now_json holds
        self.second_text = ""
        try:  # Publication's slots set as its own __init__ sets them (else its __init__ is called)
            self.own_publication = self.publication_of(b"x") == publication(out_stream, None, b"x")
        except Exception:  # other slots: the class's own __init__
            self.own_publication = False

    def now_json(self) -> str:
        """What orjson (``OPT_UTC_Z``) writes for ``datetime.now(UTC)``, as a string: the same clock
        (``time.time_ns()``, which ``datetime.now`` reads and floors to microseconds), the date and time
        of the second made once a second (by orjson), the microseconds, if any, appended."""
        return self.time_json(time_ns())

    def time_json(self, ns: int) -> str:
        """:meth:`now_json` at ``ns`` nanoseconds since the epoch."""
        second = ns // 1_000_000_000
        if second != self.second:
            self.second_text = orjson.dumps(datetime.fromtimestamp(second, UTC), option=_UTC_Z).decode()[1:-2]
            self.second = second
        micros = ns // 1000 % 1_000_000
        if micros:
            return self.second_text + "." + str(micros + 1_000_000)[1:] + "Z"
        return self.second_text + "Z"

    def usual(self, alert: AlertReceived) -> bool:
        """Whether the alert is written here (a subset of ``service._orjson_writes_as_pydantic``)."""
        fields: dict[str, Any] = alert.__dict__
        if type(alert) is not AlertReceived or fields["cap"] is not None or fields["extra"]:
            return False
        occurred_at: datetime = fields["occurred_at"]
        tz = occurred_at.tzinfo
        if tz is not self.pydantic_utc and tz is not UTC:
            return False
        published: datetime | None = fields["published"]
        if published is None:
            return True
        tz = published.tzinfo
        return tz is self.pydantic_utc or tz is UTC

    def outcomes(self, alerts: Sequence[AlertReceived]) -> list[Any]:
        """Per alert, ``(Publication(out_stream, None, data),)``, or the exception its classification
        or encoding raised (that alert fails; the others flow)."""
        classifier = self.classifier
        own_publication = self.own_publication
        pub_type = self.publication
        out_stream = self.out_stream
        results: list[Any] = []
        for alert in alerts:
            try:
                data = self.one(classifier, alert)
            except Exception as exc:  # this alert fails (retried, then dead-lettered)
                results.append(exc)
                continue
            if own_publication:
                pub: Any = _new_object(pub_type)
                object.__setattr__(pub, "stream", out_stream)
                object.__setattr__(pub, "event", None)
                object.__setattr__(pub, "data", data)
            else:
                pub = pub_type(out_stream, None, data)
            results.append((pub,))
        return results

    def publication_of(self, data: bytes) -> Any:
        """``Publication(out_stream, None, data)`` by its three slots (checked against it at start-up)."""
        pub: Any = _new_object(self.publication)
        object.__setattr__(pub, "stream", self.out_stream)
        object.__setattr__(pub, "event", None)
        object.__setattr__(pub, "data", data)
        return pub

    def one(self, classifier: Classifier, alert: AlertReceived) -> bytes:
        """The ``__data__`` value of ``alert``'s entry."""
        fields: dict[str, Any] = alert.__dict__
        cap = fields["cap"]
        if cap is None and self.usual(alert):
            return self.usual_data(classifier, alert, fields)
        if cap is None:
            payload = classifier.classify_payload(
                fields["text"], title=fields["title"], issuer=fields["issuer"], alert_id=fields["alert_id"]
            )
        else:
            payload = classifier.classify_payload(
                fields["text"],
                title=fields["title"],
                issuer=fields["issuer"],
                alert_id=fields["alert_id"],
                cap_urgency=cap.urgency,
                cap_severity=cap.severity,
                cap_certainty=cap.certainty,
            )
        return self.fallback(classifier, alert, payload)

    def usual_data(self, classifier: Classifier, alert: AlertReceived, fields: dict[str, Any]) -> bytes:
        """:meth:`one` of a usual alert (:meth:`usual`): written here, its labels as JSON fragments."""
        text: str = fields["text"]
        title: str = fields["title"]
        issuer: str | None = fields["issuer"]
        alert_id: str = fields["alert_id"]
        try:
            payload = classifier._payload(text, title, issuer, alert_id, None, None, None, True)
        except orjson.JSONEncodeError:  # a lone surrogate in a label's evidence: the old way, its own error
            dicts = classifier.classify_payload(text, title=title, issuer=issuer, alert_id=alert_id)
            return self.fallback(classifier, alert, dicts)
        correlation_id: str = fields["correlation_id"]
        try:
            body = orjson.dumps(
                {
                    "event_id": new_event_id(),
                    "occurred_at": self.now_json(),
                    "schema_version": SCHEMA_VERSION,
                    "correlation_id": correlation_id,
                    "producer": self.producer,
                    "alert": fields,
                    "classification": payload,
                },
                option=_UTC_Z,
            )
        except orjson.JSONEncodeError:  # an int beyond 64 bits, a lone surrogate: pydantic's JSON
            return self.fallback(classifier, alert, cast(ClassificationPayload, payload))
        return self.envelope(correlation_id, self.event_type, body)
