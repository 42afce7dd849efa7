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
sees. Labels (a type and its evidence texts) and locations (a gazetteer entry) are shared the same
way (:func:`_interned_values`: an LRU cache called by pydantic-core with the validated field values;
~7% fewer instructions per decoded alert than a model instance made and freed per label and per
location). A location's coordinate of ``-0.0`` may come back as ``0.0`` (an equal value) from an
earlier alert: nothing notify does with coordinates (distances, grid cells) tells them apart.

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

import functools
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

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
            for clear in _CACHE_CLEARS:  # the shared labels quote these evidence objects: one per text
                clear()
        evidence: LeanEvidence = _MAKE_EVIDENCE({"text": text})
        self[text] = evidence
        return evidence


_EVIDENCE = _InternedEvidence()
_CACHE_CLEARS: list[Callable[[], None]] = []
"""The ``cache_clear`` of each cache of :func:`_interned_value`, called when :data:`_EVIDENCE` starts
afresh."""


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


VALUES_INTERNED_MAX = 4096
"""At most this many distinct labels, and as many locations, are kept by the decode (least recently
used first out)."""

INTERNED_VALUES: tuple[type, ...] = (LeanLabelScore, LeanLocation)
"""The lean classes whose values the decode shares (:func:`_interned_values`)."""

_UNSET: Any = object()
"""The default of an interned value's optional arguments: the key tells a field left out of the JSON
(not in the model's fields set) from one given its default value."""


def _evidence_calls(schema: Any, replace: Callable[[Any], Any]) -> Any:
    """A copy of ``schema`` whose interned evidence calls (:func:`_interned_evidence`) are each
    ``replace(call)``."""
    if isinstance(schema, dict):
        if schema.get("type") == "call" and schema.get("function") == _EVIDENCE.__getitem__:
            return replace(schema)
        return {k: _evidence_calls(v, replace) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_evidence_calls(v, replace) for v in schema]
    return schema


def _text_call(call: Any) -> Any:
    """What the evidence call ``call`` checks, with the evidence's text itself for value (a key part:
    a string hashes in C, a model's ``__hash__`` is Python): an object, its ``text`` validated by the
    call's own parameter schema, other keys ignored; then ``operator.itemgetter("text")`` (C) of
    that dict (cheaper than a call's arguments)."""
    arguments = call["arguments_schema"]
    (text,) = arguments["arguments_schema"]
    assert text["name"] == "text", text
    assert text.get("mode", "positional_or_keyword") == "positional_or_keyword", text
    assert arguments.get("extra_behavior") == "ignore", arguments
    fields = {"text": core_schema.typed_dict_field(text["schema"])}
    return core_schema.no_info_after_validator_function(
        _TEXT, core_schema.typed_dict_schema(fields, extra_behavior="ignore")
    )


_TEXT: Final = operator.itemgetter("text")


def _text_to_evidence(call: Any) -> Any:
    """What takes a key's evidence text back to the interned evidence (the call's own result)."""
    return core_schema.no_info_plain_validator_function(_EVIDENCE.__getitem__)


def _interned_value(node: Any) -> Any:
    """The lean model node ``node`` (its evidence interned) as a call of a least-recently-used cache
    (:func:`functools.lru_cache`, C: no Python frame on a hit) with the node's field values, each
    validated by the node's own field schema (an omitted optional field passed as :data:`_UNSET`): the
    same checks (an object, those fields; other keys ignored, as the lean node ignores them), and
    for value the object the node made for the first JSON with the same field values (a miss makes
    it with the node's validator, from the fields the JSON held)."""
    inner = node["schema"]
    assert inner["type"] == "model-fields", inner
    assert inner["extra_behavior"] == "ignore", inner
    assert not inner.get("computed_fields"), inner
    assert not node.get("post_init"), node
    assert not node.get("custom_init"), node
    names: list[str] = []
    params: list[Any] = []
    for name, field in inner["fields"].items():
        assert field["type"] == "model-field", field
        assert "validation_alias" not in field, field
        schema = _evidence_calls(field["schema"], _text_call)
        if schema["type"] == "default":
            assert "default" in schema, schema
            assert "default_factory" not in schema, schema
            schema = {**schema, "default": _UNSET}
        names.append(name)
        params.append(core_schema.arguments_v3_parameter(name, schema))
    make = build_validator(_evidence_calls(node, _text_to_evidence)).validate_python

    @functools.lru_cache(maxsize=VALUES_INTERNED_MAX)
    def interned(*values: Any) -> Any:
        return make({name: v for name, v in zip(names, values, strict=True) if v is not _UNSET})

    _CACHE_CLEARS.append(interned.cache_clear)
    call = core_schema.call_schema(core_schema.arguments_v3_schema(params, extra_behavior="ignore"), interned)
    return {**call, "ref": node["ref"]} if "ref" in node else call


def _interned_values(schema: Any) -> Any:
    """A copy of the lean core schema ``schema`` (its evidence interned) whose model nodes of
    :data:`INTERNED_VALUES` are each :func:`_interned_value`.

    A label (its type and the texts of its evidence) and a location (a gazetteer entry: its name,
    country, geonameid, coordinates, kind, region) come back alert after alert: one shared frozen
    object per distinct value replaces a model instance, its field dict and set (and a label's tuple
    of evidence) made and freed per alert."""
    if isinstance(schema, dict):
        if schema.get("type") == "model" and schema.get("cls") in INTERNED_VALUES:
            return _interned_value(schema)
        return {k: _interned_values(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_interned_values(v) for v in schema]
    return schema


_LEAN_SCHEMA = _lean_schema(rust_version_check(LeanAlertClassified.__pydantic_core_schema__))
_MAKE_EVIDENCE: Callable[[dict[str, str]], LeanEvidence] = build_validator(_evidence_node(_LEAN_SCHEMA)).validate_python
_LEAN_INTERNED_SCHEMA = _interned_values(_interned_evidence(_LEAN_SCHEMA))
_LEAN = build_validator(_LEAN_INTERNED_SCHEMA)
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
