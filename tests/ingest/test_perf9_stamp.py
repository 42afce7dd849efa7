"""The ninth session's stamping of JSON drafts with the API key's name while they are parsed gives
the drafts the API's _stamp made from the unstamped ones (values, extra, fields set)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vigil_ingest.api import _stamp
from vigil_ingest.detect import parse_input
from vigil_shared.auth import Principal, Role


def _principal(name: str | None) -> Principal:
    return Principal(name=name, role=Role.INGEST)


@pytest.mark.parametrize("key_name", ["bench", "feed-a", None, ""])
@pytest.mark.parametrize("fast", [True, False])
def test_drafts_stamped_while_parsed_are_the_apis_stamped_drafts(key_name: str | None, fast: bool) -> None:
    items: list[dict[str, Any]] = [
        {"text": "no source"},
        {"text": "own source", "source": "feed-a"},
        {"text": "source is the key's", "source": "bench"},
        {"text": "empty source", "source": ""},
        {"text": "with extras", "source": "other", "x": 1, "claimed_source": "sent"},
        {"text": "extras, no source", "y": [1, 2]},
    ]
    body = json.dumps(items if fast else {"alerts": items}).encode()
    for default in ("api", ""):
        plain = list(parse_input(body, content_type="application/json", source_name=default or None).drafts)
        if not default:  # no default source at all: parse_input's own default ("api") applies
            assert plain[0].source_name == "api"
        stamped = parse_input(body, content_type="application/json", source_name=default or None, stamp=key_name)
        expected = _stamp(plain, _principal(key_name))
        ours = _stamp(list(stamped.drafts), _principal(key_name))
        assert ours == expected
        assert [d.model_fields_set for d in ours] == [d.model_fields_set for d in expected]
        assert [d.extra for d in ours] == [d.extra for d in expected]
        if key_name:
            assert {d.source_name for d in ours} == {key_name}
            assert ours[1].extra.get("claimed_source") == ("feed-a" if key_name != "feed-a" else None)
