"""How notify reads an ``AlertClassified`` entry: the contract's validation, without building what
notify never reads.

Notify reads every part of a classified alert but a few: the evidence of its locations (matching
reads their names, countries, coordinates, ids, kinds and regions; rendering quotes the evidence of
the threat types and targets, never of the locations), the offsets of any evidence (rendering quotes
its text), and the confidences of labels and locations (nothing in notify looks at them).
:func:`decode_classified` validates the entry's JSON with the contract's own pydantic-core schema
(the one of :class:`AlertClassified`, with the envelopes' version check done in Rust, see
:func:`rust_version_check`) with that one change: those fields (:data:`UNREAD`)
are skipped (parsed as JSON, not validated, no Python objects made). On the bench's alerts that is
~1.8 ``Evidence`` objects fewer per location, two ints fewer per quoted evidence, a float fewer per
label and location: about a fifth less CPU to decode and free an alert.

The quoted evidence is interned: each text's :class:`LeanEvidence` is made once and shared by every
quotation of it (:class:`_InternedEvidence`, bounded), looked up by pydantic-core itself with the
text it validated (a ``call`` schema of ``dict.__getitem__``, no Python frame): an alert quotes
~13 evidence texts from the taxonomy's small vocabulary, and a model instance per quotation made
and freed was a quarter of the decode. They are frozen values: sharing one changes nothing a reader
sees.

What it returns is a :class:`LeanAlertClassified`: an :class:`AlertClassified` (a subclass, so all
code typed for the contract takes it) whose labels, locations and quoted evidence are the lean
subclasses below, without those attributes (reading one raises ``AttributeError``), and which keeps
the entry's body: its ``model_dump_json()`` is that exact JSON (what dead letters and quiet-hour
deferrals carry: the original, never a reduced copy), and any other serialisation is made from the
full event, parsed again from it.

Refusals are the contract's: when the lean validator refuses an entry, it is validated again with
:func:`~vigil_shared.events.parse_event`, which raises :class:`~vigil_shared.events.InvalidEvent`
with the same reasons (and ``unsupported_version`` for a newer schema) as before. The lean validator
accepts a superset of what the contract accepts: an entry whose only faults are in what notify skips
(those fields, or an unknown key in a label, a location or an evidence) is accepted by notify, which
never reads them, instead of being dead-lettered. The envelopes, the alert and the classification
keep the contract's checks, unknown keys refused included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import SchemaValidator, core_schema
from vigil_shared.events import (
    SCHEMA_VERSION,
    AlertClassified,
    Classification,
    Event,
    Evidence,
    LabelScore,
    Location,
    parse_event,
)


class LeanEvidence(Evidence):
    """An :class:`Evidence` as notify decodes it: its ``text`` only (no ``start``, ``end``)."""


class LeanLabelScore(LabelScore):
    """A :class:`LabelScore` as notify decodes it: without ``confidence``."""

    evidence: tuple[LeanEvidence, ...] = ()


class LeanLocation(Location):
    """A :class:`Location` as notify decodes it: without ``evidence`` nor ``confidence``."""


class LeanClassification(Classification):
    threat_types: tuple[LeanLabelScore, ...] = ()
    targets: tuple[LeanLabelScore, ...] = ()
    locations: tuple[LeanLocation, ...] = ()


class LeanAlertClassified(AlertClassified):
    """An :class:`AlertClassified` decoded by :func:`decode_classified`: without the fields of
    :data:`UNREAD`, and with the JSON it was decoded from, which its serialisations use."""

    __slots__ = ("_source_json",)
    if TYPE_CHECKING:  # a slot, not a pydantic private attribute
        _source_json: bytes | str

    classification: LeanClassification

    def source_json(self) -> str:
        """The exact JSON this alert was decoded from (the stream entry's body)."""
        src = self._source_json
        return src if isinstance(src, str) else src.decode()

    def full(self) -> AlertClassified:
        """The whole event (everything notify skips included), parsed again from its JSON."""
        return AlertClassified.model_validate_json(self._source_json)

    def model_dump_json(self, **kwargs: Any) -> str:
        """The JSON this alert was decoded from; with options, the full event's, serialised with
        them (never a copy without what notify skips)."""
        if not kwargs:
            return self.source_json()
        return self.full().model_dump_json(**kwargs)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """The full event's :meth:`~pydantic.BaseModel.model_dump` (what notify skips included)."""
        return self.full().model_dump(**kwargs)


def build_validator(schema: Any) -> SchemaValidator:
    """A pydantic-core validator built from every node of the core schema ``schema`` (e.g. a
    transformed copy of a model's).

    pydantic-core reuses a model class's own validator (its ``__pydantic_validator__``) for each
    ``model`` node of a complete class, which would ignore any change made below that node; so the
    classes of the schema's models are marked incomplete while it is built, then restored (at once,
    with no await in between: nothing else observes it)."""
    classes: list[type] = []
    _model_classes(schema, classes)
    marked = [cls for cls in dict.fromkeys(classes) if cls.__dict__.get("__pydantic_complete__") is True]
    for cls in marked:
        type.__setattr__(cls, "__pydantic_complete__", False)
    try:
        return SchemaValidator(schema)
    finally:
        for cls in marked:
            type.__setattr__(cls, "__pydantic_complete__", True)


def _model_classes(schema: Any, out: list[type]) -> None:
    if isinstance(schema, dict):
        if schema.get("type") == "model" and isinstance(schema.get("cls"), type):
            out.append(schema["cls"])
        for v in schema.values():
            _model_classes(v, out)
    elif isinstance(schema, list):
        for v in schema:
            _model_classes(v, out)


def rust_version_check(schema: Any) -> Any:
    """A copy of the core schema ``schema`` with every envelope version check (the Python call of
    :meth:`~vigil_shared.events.Event._known_version`) replaced by its inner ``int`` schema bounded
    to ``1..SCHEMA_VERSION``, checked in Rust; other nodes are copied (dicts, lists) or shared.

    A validator built from it (:func:`build_validator`) accepts exactly what the model's own
    accepts, but refuses a bad version with pydantic's generic errors, not the contract's (no
    :class:`~vigil_shared.events.UnsupportedSchemaVersion`): use it to accept, and the model's own
    validator (:func:`~vigil_shared.events.parse_event`) to explain a refusal. Alone it saves
    little (~0.4% of a classified alert's decode: about what building without pydantic-core's reuse
    of each class's own validator costs more), so ``parse_event`` does not use it."""
    if isinstance(schema, dict):
        function = schema.get("function")
        if (
            schema.get("type") == "function-after"
            and isinstance(function, dict)
            and getattr(function.get("function"), "__func__", None) is _KNOWN_VERSION
        ):
            return {**rust_version_check(schema["schema"]), "ge": 1, "le": SCHEMA_VERSION}
        return {k: rust_version_check(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [rust_version_check(v) for v in schema]
    return schema


_KNOWN_VERSION = Event.__dict__["_known_version"].__func__
"""The function of the envelope's version check (what each model's core schema calls)."""


UNREAD: dict[type, frozenset[str]] = {
    LeanEvidence: frozenset({"start", "end"}),
    LeanLabelScore: frozenset({"confidence"}),
    LeanLocation: frozenset({"evidence", "confidence"}),
}
"""Per lean class: the contract's fields notify never reads, which it does not decode."""


def _lean_schema(schema: Any) -> Any:
    """A copy of a core schema whose lean models' fields have none of :data:`UNREAD` (and ignore
    those keys, and any other unknown one, in their JSON); other nodes copied or shared."""
    if isinstance(schema, dict):
        unread = UNREAD.get(schema["cls"]) if schema.get("type") == "model" else None
        if unread is not None:
            inner = schema["schema"]
            assert inner["type"] == "model-fields", inner
            assert unread <= inner["fields"].keys(), (unread, inner["fields"].keys())
            fields = {k: _lean_schema(v) for k, v in inner["fields"].items() if k not in unread}
            return {**schema, "schema": {**inner, "fields": fields, "extra_behavior": "ignore"}}
        return {k: _lean_schema(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lean_schema(v) for v in schema]
    return schema


EVIDENCE_INTERNED_MAX = 4096
"""At most this many distinct evidence texts are kept by :data:`_EVIDENCE` (then it starts afresh)."""


class _InternedEvidence(dict[str, LeanEvidence]):
    """Each evidence text seen (up to :data:`EVIDENCE_INTERNED_MAX`) → its one :class:`LeanEvidence`.

    A quoted evidence is a frozen value of one string, and its texts are the words the classifier's
    taxonomy matched, a small vocabulary repeated from alert to alert: one shared object per text
    replaces a model instance (and its field dict and set) made and freed per quotation. Looked up
    by ``dict.__getitem__`` from pydantic-core (no Python frame on a hit); a miss makes the object
    with the lean validator the model node had (:data:`_MAKE_EVIDENCE`), so it is the object the
    per-quotation decode made."""

    __slots__ = ()

    def __missing__(self, text: str) -> LeanEvidence:
        if len(self) >= EVIDENCE_INTERNED_MAX:
            self.clear()  # bounded: a feed of ever new texts costs a miss each, never memory
        evidence: LeanEvidence = _MAKE_EVIDENCE({"text": text})
        self[text] = evidence
        return evidence


_EVIDENCE = _InternedEvidence()


def _evidence_node(schema: Any) -> Any:
    """The (first) :class:`LeanEvidence` model node of the lean schema ``schema``."""
    if isinstance(schema, dict):
        if schema.get("type") == "model" and schema.get("cls") is LeanEvidence:
            return schema
        schema = list(schema.values())
    if isinstance(schema, list):
        for v in schema:
            found = _evidence_node(v)
            if found is not None:
                return found
    return None


def _interned_evidence(schema: Any) -> Any:
    """A copy of the lean core schema ``schema`` whose :class:`LeanEvidence` model nodes are each a
    call of ``_EVIDENCE.__getitem__`` with the evidence's ``text``, validated by the node's own
    field schema: the same checks (an object, a string ``text``; other keys ignored, as the lean
    node ignores them), the interned object as the value."""
    if isinstance(schema, dict):
        if schema.get("type") == "model" and schema.get("cls") is LeanEvidence:
            assert schema["schema"]["fields"].keys() == {"text"}, schema["schema"]["fields"].keys()
            text = core_schema.arguments_v3_parameter("text", schema["schema"]["fields"]["text"]["schema"])
            arguments = core_schema.arguments_v3_schema([text], extra_behavior="ignore")
            call = core_schema.call_schema(arguments, _EVIDENCE.__getitem__)
            return {**call, "ref": schema["ref"]} if "ref" in schema else call
        return {k: _interned_evidence(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_interned_evidence(v) for v in schema]
    return schema


_LEAN_SCHEMA = _lean_schema(rust_version_check(LeanAlertClassified.__pydantic_core_schema__))
_MAKE_EVIDENCE: Callable[[dict[str, str]], LeanEvidence] = build_validator(_evidence_node(_LEAN_SCHEMA)).validate_python
_LEAN = build_validator(_interned_evidence(_LEAN_SCHEMA))
_validate_json = _LEAN.validate_json
_set_source: Callable[[LeanAlertClassified, bytes | str], None] = LeanAlertClassified.__dict__["_source_json"].__set__


def decode_classified(body: bytes | str) -> AlertClassified:
    """The classified alert in ``body`` (a stream entry's JSON), as notify reads it (see the module
    docstring); :class:`~vigil_shared.events.InvalidEvent` with the contract's reasons otherwise."""
    try:
        alert = _validate_json(body)
    except ValidationError:
        return parse_event(AlertClassified, body)  # raises the contract's error (accepts nothing more)
    _set_source(alert, body)
    return alert  # type: ignore[no-any-return]
