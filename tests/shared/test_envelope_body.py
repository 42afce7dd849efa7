"""encode_body / encode_json write the same entry as encode_data (and so as FastStream)."""

from __future__ import annotations

import pytest
from vigil_shared.envelope import encode_body, encode_data, encode_event_faststream, encode_json
from vigil_shared.events import AlertReceived, DeadLetter, NotificationDelivered


@pytest.mark.parametrize("corr", ["corr-1", "", "x" * 300, "Москва-ünïcode 😀"])
async def test_encode_body_equals_encode_data(corr: str) -> None:
    events = [
        NotificationDelivered(
            correlation_id=corr, producer="notify", alert_id="a", subscription_id="s", channel="jsonl:///x",
            idempotency_key="k", reason="matched",
        ),
        AlertReceived(correlation_id=corr, producer="t", alert_id="a", source_kind="api", source_name="t", text="é"),
        DeadLetter(correlation_id=corr, producer="t", stream="s", group="g", service="t", entry_id="1-0",
                   fields={"k": "v"}, error="e", attempts=1),
    ]  # fmt: skip
    for _ in range(2):  # the per-event-type header cache: first and later calls
        for ev in events:
            body = ev.model_dump_json().encode()
            assert encode_body(ev.correlation_id, ev.event_type, body) == encode_data(ev)
            assert encode_json(ev, body) == encode_data(ev)
            assert {b"__data__": encode_data(ev)} == await encode_event_faststream(ev)
