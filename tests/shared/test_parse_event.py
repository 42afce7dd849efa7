"""parse_event calls the model's pydantic-core validator directly: it must give what
``model_validate_json`` gives, for valid events and for every kind of invalid one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

# the contract tests' example events (tests/shared is on sys.path: pytest's rootdir-relative import)
from test_contracts import _alert, _examples
from vigil_shared.events import (
    SCHEMA_VERSION,
    AlertClassified,
    AlertReceived,
    Event,
    InvalidEvent,
    build_validator,
    parse_event,
    rust_version_check,
)


@pytest.mark.parametrize("event", _examples(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_valid_events_equal_model_validate_json(event: Event, as_text: bool) -> None:
    model = type(event)
    data: bytes | str = event.model_dump_json() if as_text else event.model_dump_json().encode()
    parsed = parse_event(model, data)
    reference = model.model_validate_json(data)
    assert type(parsed) is model
    assert parsed == reference == event
    assert parsed.model_fields_set == reference.model_fields_set
    assert parsed.model_dump_json() == event.model_dump_json()


def _variants() -> list[tuple[type[Event], bytes]]:
    alert = json.loads(_alert().model_dump_json())
    classified = next(e for e in _examples() if isinstance(e, AlertClassified))
    nested = json.loads(classified.model_dump_json())
    nested["classification"]["threat_types"][0]["confidence"] = 1.5
    nested["alert"]["schema_version"] = SCHEMA_VERSION + 1
    return [
        (AlertReceived, json.dumps({**alert, "schema_version": SCHEMA_VERSION + 1}).encode()),
        (AlertReceived, json.dumps({**alert, "schema_version": 0}).encode()),
        (AlertReceived, json.dumps({**alert, "surprise": 1}).encode()),
        (AlertReceived, json.dumps({**alert, "source_kind": "carrier-pigeon"}).encode()),
        (AlertReceived, b"not json"),
        (AlertReceived, b"[]"),
        (AlertClassified, json.dumps(nested).encode()),
    ]


def _comparable(error: ValidationError) -> list[dict[str, Any]]:
    """The errors, with exception instances in their context as (type, message): equal exceptions
    are distinct objects."""
    out = []
    for e in error.errors(include_url=False):
        ctx = {k: (type(v), str(v)) if isinstance(v, BaseException) else v for k, v in e.get("ctx", {}).items()}
        out.append({**e, "ctx": ctx})
    return out


@pytest.mark.parametrize(("model", "data"), _variants())
def test_invalid_events_fail_as_model_validate_json_does(model: type[Event], data: bytes) -> None:
    with pytest.raises(ValidationError) as reference:
        model.model_validate_json(data)
    with pytest.raises(InvalidEvent) as info:
        parse_event(model, data)
    cause = info.value.__cause__
    assert isinstance(cause, ValidationError)
    assert _comparable(cause) == _comparable(reference.value)
    assert str(info.value) == str(InvalidEvent(model.__name__, reference.value))
    assert info.value.unsupported_version == InvalidEvent(model.__name__, reference.value).unsupported_version


@pytest.mark.parametrize("event", _examples(), ids=lambda e: type(e).__name__)
def test_rust_version_check_accepts_and_builds_what_the_model_does(event: Event) -> None:
    """build_validator(rust_version_check(...)): the same objects for valid events, a refusal for
    every invalid one (the reasons are the model's own validator's job), no Python version call."""
    model = type(event)
    fast = build_validator(rust_version_check(model.__pydantic_core_schema__))
    assert "FunctionAfter" not in repr(fast)  # the envelopes' version checks are Rust's now
    assert "Prebuilt" not in repr(fast)  # built from the transformed schema, not the classes' own
    data = event.model_dump_json()
    parsed = fast.validate_json(data)
    assert type(parsed) is model
    assert parsed == model.model_validate_json(data)
    assert parsed.model_fields_set == model.model_validate_json(data).model_fields_set
    for invalid_model, body in _variants():
        if invalid_model is model:
            with pytest.raises(ValidationError):
                fast.validate_json(body)
    for version in (0, SCHEMA_VERSION + 1, "x"):
        with pytest.raises(ValidationError):
            fast.validate_json(json.dumps({**json.loads(data), "schema_version": version}))
    # the classes are left as they were (complete: their own validators still used elsewhere)
    assert all(cls.__dict__["__pydantic_complete__"] is True for cls in (model, AlertReceived, AlertClassified))
