"""The delivered events of a batch of sent jobs, each with its stream entry's data.

Once the channel accepted a batch's messages and their keys are marked "sent", the deliverer makes
each job's ``NotificationDelivered`` and the ``__data__`` of its stream entry
(:func:`delivered_outcomes`): once per delivery, the largest part of notify's work per delivery
after the routing. It lives in a module of its own so that notify's compiled build
(:mod:`vigil_notify.native`) runs it without the interpreter; :mod:`vigil_notify.delivery` imports it
(and cannot be imported here: it imports this module).

The jobs' values are read as they are (:class:`DeliveryJob`'s fields are typed ``Any``: a compiled
read of a field declared ``int`` would turn a ``bool`` into ``1``) and checked as
:func:`vigil_notify.delivery.delivered_data` checks them: the same events, the same bytes or None
(tests compare them, pure and compiled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from vigil_shared.envelope import encode_body
from vigil_shared.events import SCHEMA_VERSION, DeadLetter, NotificationDelivered, NotificationFailed

from vigil_notify.subscriptions import mask_url

log = logging.getLogger("vigil_notify.delivery")
"""The deliverer's logger (its DEBUG line per delivery, as before this module)."""

ALL_DELIVERED_FIELDS: Final = set(NotificationDelivered.model_fields)
"""Every field of ``NotificationDelivered``: each event's ``__pydantic_fields_set__`` is a copy."""

new_object: Final = object.__new__


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of the data descriptor ``name`` of ``cls`` (a slot, or ``__dict__``): what
    ``object.__setattr__(obj, name, value)`` calls for it (a data descriptor on the type comes
    before anything else), without the attribute lookup through the type's MRO per call."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            setter: Callable[[Any, Any], None] = descriptor.__set__
            return setter
    raise AttributeError(name)  # pragma: no cover - pydantic's BaseModel declares all four


set_dict: Final = slot_setter(NotificationDelivered, "__dict__")
set_fields_set: Final = slot_setter(NotificationDelivered, "__pydantic_fields_set__")
set_extra: Final = slot_setter(NotificationDelivered, "__pydantic_extra__")
set_private: Final = slot_setter(NotificationDelivered, "__pydantic_private__")

DELIVERED_TYPE: Final = NotificationDelivered.event_type
_dumps: Final = orjson.dumps


@dataclass(slots=True, init=False)
class DeliveryJob:
    """One message to one channel of one subscription (treat as read-only; not frozen only because
    a frozen dataclass's ``__init__`` costs several times more, once per delivery).
    :mod:`vigil_notify.delivery` exports it.

    Its own ``__init__`` (the dataclass's fields, in order, and defaults): compiled, the generated
    one would stay interpreted, once per delivery. The fields are typed ``Any`` so that the compiled
    class stores what it is given as it is, as the dataclass did (a compiled field declared ``str``
    would refuse anything else, one declared ``int`` turn a ``bool`` into ``1``): what they hold is
    ``alert_id``, ``correlation_id``, ``subscription_id``, ``channel_url``, ``reason``,
    ``idempotency_key``, ``entry_id``: ``str``; ``revision``: ``int``; ``kind``: a
    :data:`~vigil_shared.events.DeliveryKind`; ``message``: a
    :class:`~vigil_notify.channels.base.Message`."""

    alert_id: Any
    revision: Any
    correlation_id: Any
    subscription_id: Any
    channel_url: Any
    kind: Any
    reason: Any
    idempotency_key: Any
    message: Any
    record_under: Any
    """Recipient-log keys (original alert ids, a ``tuple[str, ...]``) to record this (subscription,
    channel) under once sent."""
    dead_letter_fields: Any
    """``dict[str, str] | None``."""
    entry_id: Any
    dead_letter_source: Any
    """``Callable[[], dict[str, str]] | None``: computes further dead-letter fields when (and only
    when) the job is dead-lettered (e.g. the JSON of the whole alert, which the hot path should not
    serialise per delivery)."""

    def __init__(
        self,
        alert_id: Any,
        revision: Any,
        correlation_id: Any,
        subscription_id: Any,
        channel_url: Any,
        kind: Any,
        reason: Any,
        idempotency_key: Any,
        message: Any,
        record_under: Any = (),
        dead_letter_fields: Any = None,
        entry_id: Any = "",
        dead_letter_source: Any = None,
    ) -> None:
        self.alert_id, self.revision, self.correlation_id = alert_id, revision, correlation_id
        self.subscription_id, self.channel_url, self.kind = subscription_id, channel_url, kind
        self.reason, self.idempotency_key, self.message = reason, idempotency_key, message
        self.record_under, self.dead_letter_fields = record_under, dead_letter_fields
        self.entry_id, self.dead_letter_source = entry_id, dead_letter_source


@dataclass(slots=True, init=False)
class DeliveryOutcome:
    """What one delivery job came to (:mod:`vigil_notify.delivery` exports it with the jobs). Its own
    ``__init__`` (the dataclass's fields and defaults, ``events`` a new list): compiled, the generated
    one would stay interpreted, once per delivery."""

    job: Any
    """The :class:`DeliveryJob` (``Any``: stored as it is given)."""
    status: str  # "delivered" | "failed" | "skipped_sent" | "skipped_in_flight"
    events: list[NotificationDelivered | NotificationFailed]
    dead_letter: DeadLetter | None
    data: bytes | None
    """The stream entry's ``__data__`` of ``events[-1]`` (the delivered event) when notify encoded it
    (:func:`~vigil_notify.delivery.delivered_data`); None: the stream worker encodes the events."""

    def __init__(
        self,
        job: Any,
        status: str,
        events: list[NotificationDelivered | NotificationFailed] | None = None,
        dead_letter: DeadLetter | None = None,
        data: bytes | None = None,
    ) -> None:
        self.job, self.status = job, status
        self.events = [] if events is None else events
        self.dead_letter, self.data = dead_letter, data


def delivered_outcomes(
    jobs: Sequence[DeliveryJob],
    at: datetime,
    at_fragment: Any,
    event_ids: Sequence[Any],
    producer: Any,
    attempt: Any,
    debug: bool,
) -> list[DeliveryOutcome]:
    """``DeliveryOutcome(job, "delivered", [event], None, data)`` of each of ``jobs`` (delivery jobs),
    in order: ``event`` its ``NotificationDelivered`` (made without validation, as
    :func:`vigil_notify.delivery._delivered_event` makes it), ``data`` the ``__data__`` of its stream
    entry (:func:`vigil_notify.delivery.delivered_data`, or None when a value is not a plain
    ``str``/``int`` or cannot be UTF-8 encoded: the stream worker then encodes the event).

    ``at`` is every event's ``occurred_at`` and ``at_fragment`` the ``orjson.Fragment`` of its JSON
    (:func:`vigil_notify.delivery.occurred_at_json`); ``event_ids`` one per job; ``debug``: log the
    DEBUG line of each delivery. What every event shares (the timestamp's JSON, the producer, the
    envelope headers per correlation id, the masked channel per URL) is made once for the lot."""
    heads: dict[str, bytes] = {}
    masks: dict[Any, Any] = {}  # mask_url per channel URL (a batch has a handful)
    # what the data's checks ask of every event, checked once for the lot: the rest per job
    plain = type(attempt) is int and type(SCHEMA_VERSION) is int and type(producer) is str
    fields = ALL_DELIVERED_FIELDS
    # each event's values: a copy of this (the shared values set, the keys in the model's order: an
    # event's __dict__ order), then its own set (a dict's copy and ten stores cost less than a new one)
    shared: dict[str, Any] = {
        "event_id": None,
        "occurred_at": at_fragment,
        "schema_version": SCHEMA_VERSION,
        "correlation_id": None,
        "producer": producer,
        "alert_id": None,
        "revision": None,
        "subscription_id": None,
        "channel": None,
        "kind": None,
        "attempt": attempt,
        "idempotency_key": None,
        "reason": None,
    }
    out: list[DeliveryOutcome] = []
    for j, event_id in zip(jobs, event_ids, strict=True):
        job: DeliveryJob = j  # (a compiled class's fields read directly, not by attribute lookup)
        url: Any = job.channel_url
        channel: Any = masks.get(url)
        if channel is None:
            channel = masks[url] = mask_url(url)
        cid: Any = job.correlation_id
        aid: Any = job.alert_id
        rev: Any = job.revision
        sub_id: Any = job.subscription_id
        kind: Any = job.kind
        idem: Any = job.idempotency_key
        reason: Any = job.reason
        # the stream data's field values (occurred_at as its JSON), then the same dict is the event's
        values = shared.copy()
        values["event_id"] = event_id
        values["correlation_id"] = cid
        values["alert_id"] = aid
        values["revision"] = rev
        values["subscription_id"] = sub_id
        values["channel"] = channel
        values["kind"] = kind
        values["idempotency_key"] = idem
        values["reason"] = reason
        data: bytes | None = None
        if (
            plain and type(rev) is int and type(event_id) is str and type(cid) is str and type(aid) is str
            and type(sub_id) is str and type(channel) is str and type(kind) is str and type(idem) is str
            and type(reason) is str
        ):  # fmt: skip
            try:
                body = _dumps(values)
            except TypeError:  # orjson.JSONEncodeError: a lone surrogate (the worker reports it)
                pass
            else:
                head = heads.get(cid)
                if head is None:
                    head = heads[cid] = encode_body(cid, DELIVERED_TYPE, b"")
                data = head + body
        values["occurred_at"] = at
        # what pydantic's model_construct sets, by object.__setattr__ (compiled, in a function: one
        # C call of PyObject_GenericSetAttr each, not a call of the descriptor's bound __set__)
        event = new_object(NotificationDelivered)
        object.__setattr__(event, "__dict__", values)
        object.__setattr__(event, "__pydantic_fields_set__", set(fields))
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        out.append(DeliveryOutcome(job, "delivered", [event], None, data))
        if debug:
            log.debug("delivered %s rev %d to %s via %s", aid, rev, sub_id, channel)
    return out


def sent_records(jobs: Sequence[DeliveryJob], channel_hash: Callable[[str], str]) -> tuple[list[Any], list[Any]]:
    """What :meth:`vigil_notify.delivery.Deliverer._mark_sent_many` hands its script for ``jobs``:
    the recipient records (per original alert key, in first-seen order: ``[original, member,
    reason, member, reason, ...]``, a member ``"{subscription id}|{channel_hash(url)}"`` once, with
    its last job's reason) and the jobs' idempotency keys, in order. Compiled: one loop without the
    interpreter per batch, not a few lines of Python per delivery."""
    records: dict[Any, dict[Any, Any]] = {}
    keys: list[Any] = []
    hashes: dict[Any, str] = {}  # channel_hash per channel URL (a batch has a handful)
    for job in jobs:
        keys.append(job.idempotency_key)
        record_under: Any = job.record_under
        if record_under:
            url: Any = job.channel_url
            h = hashes.get(url)
            if h is None:
                h = hashes[url] = channel_hash(url)
            member = f"{job.subscription_id}|{h}"
            reason: Any = job.reason
            for original in record_under:
                mapping = records.get(original)
                if mapping is None:
                    mapping = records[original] = {}
                mapping[member] = reason
    packed: list[Any] = []
    for original, mapping in records.items():
        rec: list[Any] = [original]
        for m, r in mapping.items():
            rec.append(m)
            rec.append(r)
        packed.append(rec)
    return packed, keys
