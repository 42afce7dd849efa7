"""notifier.publications of perf8 (delivered events counted under their channel alone, each
publication's slots set with object.__setattr__): the same publications, in order, and the same
tally (keys, counts and key order) as the code it replaces, on random results."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from vigil_notify.notifier import HandleResult, publications
from vigil_shared import streams
from vigil_shared.events import DeadLetter, NotificationDelivered, NotificationFailed
from vigil_shared.worker import Publication


def _reference(result: HandleResult, tally: Counter[tuple[str, str]]) -> list[Publication]:
    """publications as it was before perf8 (a (channel, outcome) key per event; Publication(...))."""
    pubs: list[Publication] = []
    seen: dict[tuple[str, str], int] = {}
    for e in result.events:
        if isinstance(e, NotificationDelivered):
            outcome = "delivered"
        else:
            outcome = "failed_permanent" if e.permanent else "failed_retrying"
        key = (e.channel, outcome)
        seen[key] = seen.get(key, 0) + 1
        pubs.append(Publication(streams.NOTIFICATIONS, e, result.data_of(e)))
    for key, n in seen.items():
        tally[key] = tally.get(key, 0) + n
    pubs.extend([Publication(streams.DEADLETTER, d) for d in result.dead_letters])
    return pubs


def _event(rnd: random.Random, n: int) -> Any:
    common = {
        "correlation_id": f"c{n}", "producer": "notify", "alert_id": f"a{n}", "subscription_id": f"s{n % 7}",
        "channel": rnd.choice(["jsonl:///x", "webhook+https://***@h/", "console://", "jsonl:///x"]),
        "idempotency_key": f"k{n}",
    }  # fmt: skip
    if rnd.random() < 0.7:
        return NotificationDelivered(**common, reason="r")
    return NotificationFailed(**common, error="e", permanent=rnd.random() < 0.5)


def test_the_same_publications_and_tally_as_before() -> None:
    rnd = random.Random(20261126)
    tally, reference = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
    tally[("jsonl:///x", "delivered")] = 3  # a batch's earlier alerts
    reference[("jsonl:///x", "delivered")] = 3
    for n in range(500):
        events = [_event(rnd, n * 10 + i) for i in range(rnd.randint(0, 6))]
        result = HandleResult(events=events)
        for e in events:
            if rnd.random() < 0.6:
                result.encoded[id(e)] = (e, f"data {e.idempotency_key}".encode())
        if events and rnd.random() < 0.1:  # an equal event that is not the one encoded
            twin = events[0].model_copy()
            result.encoded[id(twin)] = (twin, b"twin")
        if rnd.random() < 0.1:
            result.dead_letters.append(
                DeadLetter(
                    correlation_id="c",
                    producer="notify",
                    stream="s",
                    group="g",
                    service="notify",
                    entry_id="1-0",
                    fields={},
                    error="boom",
                    attempts=3,
                )
            )
        got, want = publications(result, tally), _reference(result, reference)
        assert [type(p) for p in got] == [Publication] * len(want)
        assert [(p.stream, p.data) for p in got] == [(p.stream, p.data) for p in want]
        assert all(p.event is q.event for p, q in zip(got, want, strict=True))
        assert got == want
        assert list(tally.items()) == list(reference.items())
