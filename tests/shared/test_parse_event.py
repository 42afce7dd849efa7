"""parse_event calls the model's pydantic-core validator directly: it must give what
``model_validate_json`` gives, for valid events and for every kind of invalid one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

# the contract tests' example events (tests/shared is on sys.path: pytest's rootdir-relative import)
from test_contracts import _alert, _examples
from vigil_shared.events import SCHEMA_VERSION, AlertClassified, AlertReceived, Event, InvalidEvent, parse_event


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
