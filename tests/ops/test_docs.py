"""The committed AsyncAPI/OpenAPI files are what the code generates (run `vigil docs` when this fails)."""

from __future__ import annotations

import json
from pathlib import Path

from vigil_shared import streams
from vigil_shared.docs import render_all, stale

DOCS = Path(__file__).parents[2] / "docs"


async def test_committed_event_and_http_docs_are_current() -> None:
    files, _errors = await render_all()
    assert stale(DOCS, files) == [], "docs are stale: run `uv run vigil docs` and commit docs/"


async def test_asyncapi_documents_every_stream_group_and_event() -> None:
    files, _ = await render_all()
    spec = json.loads(files["asyncapi.json"])
    assert spec["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in spec["channels"].values()}
    assert set(streams.ALL_STREAMS) <= addresses
    capfeed = spec["channels"]["vigil.alerts.classified:capfeed"]
    assert capfeed["bindings"]["redis"]["groupName"] == "capfeed"
    assert capfeed["bindings"]["redis"]["method"] == "xreadgroup"
    msg_ref = next(iter(capfeed["messages"].values()))["$ref"].rsplit("/", 1)[-1]
    assert spec["components"]["messages"][msg_ref]["payload"] == {"$ref": "#/components/schemas/AlertClassified"}
    published = {k for k, op in spec["operations"].items() if op["action"] == "send"}
    assert "vigil.alerts.classified:publish:AlertClassified" in published
    assert "vigil.deadletter:publish:DeadLetter" in published
    for name in ("AlertReceived", "AlertClassified", "NotificationDelivered", "NotificationFailed", "DeadLetter"):
        assert "correlation_id" in spec["components"]["schemas"][name]["properties"]
    assert "EmptyPayload" not in spec["components"]["schemas"]


async def test_openapi_of_capfeed_lists_its_routes_and_the_probes() -> None:
    files, _ = await render_all()
    paths = json.loads(files["openapi-capfeed.json"])["paths"]
    assert {"/healthz", "/readyz", "/metrics", "/feeds/alerts.atom", "/cap/{alert_id}.xml"} <= set(paths)
