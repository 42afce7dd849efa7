"""Vigil's own envelope encoder writes exactly the bytes FastStream's encoder writes."""

from __future__ import annotations

import pytest
from vigil_shared.envelope import decode_entry, encode_event, encode_event_faststream
from vigil_shared.events import NotificationDelivered


@pytest.mark.parametrize("corr", ["corr-1", "", "x" * 300, "Москва-ünïcode"])
async def test_encode_event_is_byte_identical_to_faststream(corr: str) -> None:
    ev = NotificationDelivered(
        correlation_id=corr, producer="notify", alert_id="a", subscription_id="s", channel="jsonl:///x",
        idempotency_key="k", reason="matched: Moscow <&>",
    )  # fmt: skip
    ours, theirs = await encode_event(ev), await encode_event_faststream(ev)
    assert ours == theirs
    if not corr.isascii():
        return  # FastStream writes header lengths in characters: such entries do not parse back
    body, headers = decode_entry(ours)
    assert body == ev.model_dump_json().encode()
    assert headers["event_type"] == "notification.delivered"
