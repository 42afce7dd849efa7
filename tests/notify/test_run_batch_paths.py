"""Deliverer.run_batch over its claims: every key claimed (the usual case: the jobs grouped by channel
URL), a mix of states (a key already sent, an invalid channel), and one key twice in a batch. Each
gives one outcome per job, in job order, and sends each key once."""

from __future__ import annotations

import json
from pathlib import Path

from vigil_notify.channels.base import Message
from vigil_notify.channels.registry import default_registry
from vigil_notify.delivery import Deliverer, DeliveryJob, idempotency_key


def _job(alert_id: str, sub_id: str, url: str) -> DeliveryJob:
    idem = idempotency_key(alert_id, 1, sub_id, url)
    payload = {"alert_id": alert_id, "subscription_id": sub_id}
    message = Message("title", "text", "markdown", "html", payload, idem)
    return DeliveryJob(alert_id, 1, "c" * 32, sub_id, url, "new", "reason", idem, message, (alert_id,))


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_all_claimed_batch_groups_by_url_and_keeps_job_order(redis, settings, tmp_path) -> None:
    a, b = f"jsonl://{tmp_path / 'a.jsonl'}", f"jsonl://{tmp_path / 'b.jsonl'}"
    jobs = [
        _job("x1", "s1", a), _job("x1", "s2", b), _job("x2", "s1", "nosuchscheme://nowhere"),
        _job("x2", "s1", a), _job("x3", "s3", b), _job("x3", "s1", a),
    ]  # fmt: skip
    d = Deliverer(redis, default_registry(), settings, owner="replica-a")
    outcomes = await d.run_batch(jobs)
    assert [o.job for o in outcomes] == jobs
    assert [o.status for o in outcomes] == ["delivered", "delivered", "failed", "delivered", "delivered", "delivered"]
    assert outcomes[2].dead_letter is not None
    assert [(r["alert_id"], r["subscription_id"]) for r in _lines(tmp_path / "a.jsonl")] == [
        ("x1", "s1"), ("x2", "s1"), ("x3", "s1"),
    ]  # fmt: skip
    assert [(r["alert_id"], r["subscription_id"]) for r in _lines(tmp_path / "b.jsonl")] == [("x1", "s2"), ("x3", "s3")]
    assert d._sending == set()
    for job in jobs[:2] + jobs[3:]:
        assert await d.ledger.state(job.idempotency_key) == "sent"
    assert await d.ledger.state(jobs[2].idempotency_key) is None  # a final failure gives the claim back
    # again: every key already sent, so the per-state loop, and nothing sent twice
    again = await d.run_batch(jobs)
    assert [o.status for o in again] == ["skipped_sent", "skipped_sent", "failed"] + ["skipped_sent"] * 3
    assert len(_lines(tmp_path / "a.jsonl")) == 3
    assert len(_lines(tmp_path / "b.jsonl")) == 2
    assert d._sending == set()
    await d.aclose()


async def test_a_key_twice_in_one_batch_is_sent_once(redis, settings, tmp_path) -> None:
    a = f"jsonl://{tmp_path / 'a.jsonl'}"
    job = _job("x1", "s1", a)
    other = _job("x2", "s1", a)
    d = Deliverer(redis, default_registry(), settings, owner="replica-a")
    outcomes = await d.run_batch([job, other, job])
    assert [o.status for o in outcomes] == ["delivered", "delivered", "skipped_sent"]
    assert [r["alert_id"] for r in _lines(tmp_path / "a.jsonl")] == ["x1", "x2"]
    assert d._sending == set()
    await d.aclose()
