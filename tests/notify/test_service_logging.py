"""The notify service logs one INFO summary per read batch, never an INFO line per alert or delivery
(the issue: "no per-message logging at info level"); per-alert lines are DEBUG and carry the ids."""

from __future__ import annotations

import logging

import structlog
from vigil_notify.notifier import HandleResult
from vigil_notify.service import BatchSummary, batch_handler
from vigil_notify.subscriptions import SubscriptionStore

from .helpers import make_alert, make_sub
from .test_notifier import lines, notifier


async def test_a_batch_logs_one_info_summary_and_per_alert_lines_at_debug(
    redis, settings, tmp_path, caplog
) -> None:
    out = tmp_path / "out.jsonl"
    store = SubscriptionStore(redis)
    await store.put(make_sub("desk", [f"jsonl://{out}"]))
    await store.put(make_sub("ru", [f"jsonl://{out}", "console://"], countries=["RU"]))
    await store.put(make_sub("tr", [f"jsonl://{out}"], countries=["TR"]))
    n = notifier(redis, settings)
    handle = batch_handler(n, redis, 10_000)
    batch = [
        make_alert(alert_id="b1"),
        make_alert(alert_id="b2", title="Another alert", text="Something else entirely in Moscow."),
        # the same content as b1 from another source: a duplicate for both of b1's subscriptions
        make_alert(alert_id="b3"),
        make_alert(
            alert_id="b4",
            title="Nothing here",
            text="No threat.",
            locations=(),
            countries=(),
            threats=(),
            targets=(),
            is_threat=False,
        ),
    ]
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        pubs = await handle(batch)
    assert [len(p) for p in pubs if not isinstance(p, BaseException)] == [3, 3, 0, 0]
    assert len(lines(out)) == 4

    info = [e for e in logs if e["log_level"] in ("info", "warning", "error", "critical")]
    assert info == [
        {
            "event": "batch routed",
            "log_level": "info",
            "alerts": 4,
            "routed": 3,
            "deliveries": 6,
            "failed_retrying": 0,
            "failed_permanent": 0,
            "deferred": 0,
            "digested": 0,
            "duplicates": 2,
            "skipped": 0,
            "errors": 0,
        }
    ]
    routed = [e for e in logs if e["event"] == "alert routed"]
    assert [(e["log_level"], e["alert_id"], e["correlation_id"], e["sent"]) for e in routed] == [
        ("debug", "b1", batch[0].correlation_id, 3),
        ("debug", "b2", batch[1].correlation_id, 3),
        ("debug", "b3", batch[2].correlation_id, 0),
    ]
    # the standard-library lines of the notifier and the deliverer (delivered, same content): DEBUG
    notify_records = [r for r in caplog.records if r.name.startswith("vigil_notify")]
    assert any("delivered b1" in r.getMessage() for r in notify_records)
    assert any("same content as b1" in r.getMessage() for r in notify_records)
    assert all(r.levelno == logging.DEBUG for r in notify_records), [
        (r.levelname, r.getMessage()) for r in notify_records if r.levelno != logging.DEBUG
    ]
    await n.aclose()


async def test_the_second_batch_of_the_same_alerts_is_summarised_as_skipped(redis, settings, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    await SubscriptionStore(redis).put(make_sub("desk", [f"jsonl://{out}"]))
    n = notifier(redis, settings)
    handle = batch_handler(n, redis, 10_000)
    batch = [make_alert(alert_id="s1")]
    await handle(batch)
    with structlog.testing.capture_logs() as logs:
        await handle(batch)  # redelivered: already sent
    (summary,) = [e for e in logs if e["log_level"] != "debug"]
    assert summary["event"] == "batch routed"
    assert (summary["alerts"], summary["deliveries"], summary["skipped"]) == (1, 0, 1)
    assert len(lines(out)) == 1
    await n.aclose()


def test_batch_summary_counts_what_each_result_did() -> None:
    s = BatchSummary(alerts=2)
    s.add(HandleResult(deferred=[("a", "c", None)], digested=[("a", "c")], duplicates=[("b", "x")]))  # type: ignore[list-item]
    s.add(HandleResult())
    assert (s.routed, s.deferred, s.digested, s.duplicates, s.skipped) == (0, 1, 1, 1, 0)
