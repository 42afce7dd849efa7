"""perf8 (render): what notify writes per delivery stays byte for byte what it was.

The prepared message's context now lives on one slotted object (``_Base``), its dict made only when a
template needs it, and the compiled modules' constants are ``Final``; ``sent_records`` hashes each
channel URL once per batch. Checked here against the code they replaced (main's context dict and
``sent_records``, copied below) and against the contract (the full Jinja render's payload and text
JSON-encoded by the json module; the worker's own encoding of each delivered event), on ``vigil
bench``'s 3,000 classified alerts (``bench_notify.py``'s) and on odd ones: non-ASCII, control
characters, NULs, stand-ins, lone surrogates, empty fields, long texts. The same checks run again with
the compiled build (``make native``'s modules, built into a temporary directory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import native_support
import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
SENT_AT = "2026-11-26T13:00:00.123456+01:00"
AT = datetime(2026, 11, 26, 12, 0, 1, 234567, tzinfo=UTC)
ODD = ["", "plain", "Zürich — ünïcödé 😀 Москва", "ctl \x01\x02\t\r\n\x1f\x7f \x85 \u2028 end", 'q"uo\\te', "a\x00b"]


# ---------------------------------------------------------------- the code replaced (main, 81ee309)


def reference_context(alert: Any, kind: str, reason: str, subscription_name: str) -> dict[str, Any]:
    """main's ``Renderer.context`` (``_context_and_base``'s dict), read through the models' attributes."""
    a, c = alert.alert, alert.classification
    cap = a.cap
    evidence: list[str] = []

    def label_types(labels: Sequence[Any]) -> list[str]:
        types: list[str] = []
        for label in labels:
            types.append(label.type)
            if len(evidence) < 5:
                for ev in label.evidence:
                    if ev.text and ev.text not in evidence:
                        evidence.append(ev.text)
                        if len(evidence) == 5:
                            break
        return types

    threats = label_types(c.threat_types)
    targets = label_types(c.targets)
    title = a.title or (cap.headline if cap and cap.headline else "") or a.text[:80]
    places = [f"{loc.name}, {loc.country_code}" for loc in c.locations] or list(c.countries)
    url = a.url if a.url and (a.url[:7].lower() == "http://" or a.url[:8].lower() == "https://") else None
    return {
        "kind": kind,
        "kind_label": {"new": "", "update": "UPDATE", "cancel": "CANCELLED", "digest": "DIGEST"}[kind],
        "title": title,
        "text": a.text,
        "issuer": a.issuer or a.source_name,
        "severity": c.severity,
        "urgency": c.urgency,
        "places": places,
        "threats": threats,
        "targets": targets,
        "advice": cap.instruction if cap and cap.instruction else None,
        "evidence": evidence,
        "url": url,
        "reason": reason,
        "revision": a.revision,
        "subscription_name": subscription_name,
    }


def reference_sent_records(jobs: Sequence[Any], channel_hash: Callable[[str], str]) -> tuple[list[Any], list[Any]]:
    """main's ``sent_records`` (a hash per job)."""
    records: dict[Any, dict[Any, Any]] = {}
    keys: list[Any] = []
    for job in jobs:
        keys.append(job.idempotency_key)
        if job.record_under:
            member = f"{job.subscription_id}|{channel_hash(job.channel_url)}"
            for original in job.record_under:
                records.setdefault(original, {})[member] = job.reason
    return [[o, *[x for m, r in mapping.items() for x in (m, r)]] for o, mapping in records.items()], keys


# ---------------------------------------------------------------------------------------- the checks


def _contract_line(full: Any, sent_at: str) -> bytes:
    """The JSONL line the contract gives: the full render's payload (its ``sent_at`` the prepared
    message's) plus ``rendered_text``, by the json module, a newline, UTF-8."""
    payload = {**full.payload, "sent_at": sent_at}
    return (json.dumps({**payload, "rendered_text": full.text}, ensure_ascii=False) + "\n").encode("utf-8")


def check_alerts(cases: Sequence[tuple[Any, str, list[tuple[str, str, str, str, str]]]]) -> dict[str, int]:
    """For each (alert, kind, targets): the context, every target's JSONL line (alone and in a
    batch), some targets' bodies, the delivered events and their data, and the recipient records.
    Returns counts of what was compared (so that a caller can see nothing was skipped)."""
    from vigil_notify.delivered import DeliveryJob, delivered_outcomes, sent_records
    from vigil_notify.delivery import _Fragment, channel_hash, occurred_at_json
    from vigil_notify.rendering import FilledMessage, Renderer, json_lines_bytes
    from vigil_shared.envelope import encode_data

    r = Renderer()
    fragment = _Fragment(occurred_at_json(AT))
    counts = {"lines": 0, "filled": 0, "bodies": 0, "raised": 0, "data": 0, "contexts": 0}
    all_jobs: list[Any] = []
    for n, (alert, kind, targets) in enumerate(cases):
        for _, _, name, reason, _ in targets[:2]:
            ctx = r.context(alert, kind=kind, reason=reason, subscription_name=name)  # type: ignore[arg-type]
            ref = reference_context(alert, kind, reason, name)
            assert ctx == ref
            assert list(ctx) == list(ref)
            counts["contexts"] += 1
        prepared = r.prepare(alert, kind=kind, sent_at=SENT_AT)  # type: ignore[arg-type]
        if prepared._fast:
            assert prepared._ctx == reference_context(alert, kind, "\x00vigil-reason-5f0c1e\x00",
                                                      "\x00vigil-subscription-name-5f0c1e\x00")  # fmt: skip
        messages = []
        jobs = []
        a = alert.alert
        for j, (sub_id, url, name, reason, key) in enumerate(targets):
            msg = prepared.render(reason=reason, subscription_id=sub_id, subscription_name=name, idempotency_key=key)
            counts["filled"] += type(msg) is FilledMessage
            full = r.render(alert, kind=kind, reason=reason, subscription_id=sub_id,  # type: ignore[arg-type]
                            subscription_name=name, idempotency_key=key)  # fmt: skip
            try:
                line = msg.json_line_bytes()
            except UnicodeEncodeError:  # a lone surrogate: the contract's encoding raises too
                with pytest.raises(UnicodeEncodeError):
                    _contract_line(full, SENT_AT)
                counts["raised"] += 1
                continue
            sent_at = json.loads(line)["sent_at"]  # (a full render per delivery has its own clock)
            assert sent_at == SENT_AT or type(msg) is not FilledMessage
            assert line == _contract_line(full, sent_at)
            counts["lines"] += 1
            messages.append((msg, line))
            if (n + j) % 5 == 0:
                parts = (msg.title, msg.text, msg.markdown, msg.html)
                assert parts == (full.title, full.text, full.markdown, full.html)
                counts["bodies"] += 1
            jobs.append(DeliveryJob(a.alert_id, a.revision, alert.correlation_id, sub_id, url, kind, reason, key, msg,
                                    (a.alert_id, f"orig-{n % 3}") if j % 4 else (), None, "1-0", None))  # fmt: skip
        if messages:
            assert json_lines_bytes([m for m, _ in messages]) == [line for _, line in messages]
        ids = [f"{n:016x}{j:016x}" for j in range(len(jobs))]
        for o in delivered_outcomes(jobs, AT, fragment, ids, "notify", 1, False):
            (event,) = o.events
            if o.data is not None:
                assert o.data == encode_data(event)
                counts["data"] += 1
        all_jobs += jobs
        if n % 50 == 49 or n == len(cases) - 1:
            assert sent_records(all_jobs, channel_hash) == reference_sent_records(all_jobs, channel_hash)
            all_jobs = []
    return counts


def _targets(n: int, extra: bool) -> list[tuple[str, str, str, str, str]]:
    """Hostile targets: (subscription id, channel URL, name, reason, key)."""
    out = [("sub-a", "jsonl:///dev/null", "Trip <M> & 'co' *md*", 'matched: <b>x</b> & "q"', f"{n:032x}")]
    if extra:
        for i, odd in enumerate(ODD):
            out.append((f"sub-{odd}", f"jsonl:///tmp/x{i % 2}.jsonl", odd, odd or "r", f"k{i}\x02{odd}"))
        out.append(("lone \ud801", "jsonl:///dev/null", "lone \udc80", "why \ud800", "k"))
        out.append(("s", "console://", "x", "\x00vigil-reason-5f0c1e\x00", "key"))
    return out


def odd_alerts() -> Iterator[Any]:
    from vigil_shared.events import CapInfo

    from .helpers import ISTANBUL, MOSCOW, SPB, make_alert

    cap = CapInfo(identifier="i1", sender="s@x", sent="2026-11-25T12:00:00+00:00", msg_type="Alert",
                  instruction="Stay inside \x01 é", headline="Head <line> 😀")  # fmt: skip
    for odd in ODD:
        yield make_alert(title=odd, text=odd, url=None, targets=())
        yield make_alert(title=f"t {odd}", text=f"{odd}\n\n{odd}  x", locations=(MOSCOW, SPB, ISTANBUL), cap=cap)
    yield make_alert(title="", text="", locations=(), countries=(), threats=(), targets=())
    yield make_alert(title="", text="", cap=cap, locations=(), countries=("RU", "TR"))
    yield make_alert(text="x" * 100_000 + " é " + "y" * 50_000, title="long")
    yield make_alert(text="\x00vigil-reason-5f0c1e\x00 quoted", revision=3, revision_of="a-0")
    yield make_alert(text="\x00vigil-subscription-name-5f0c1e\x00 quoted")
    yield make_alert(text="lone \ud800 surrogate")
    yield make_alert(title="t \udfff")
    yield make_alert(url="javascript:alert(1)", threats=("terrorism", "civil_unrest", "crime", "kidnapping"))
    yield make_alert(url='HTTPS://E.X/?a=1&b="2"<3>', severity="Extreme", urgency="Immediate")


def _odd_cases() -> list[tuple[Any, str, list[tuple[str, str, str, str, str]]]]:
    kinds = ("new", "update", "cancel")
    return [(alert, kind, _targets(n, True)) for n, alert in enumerate(odd_alerts()) for kind in kinds]


def _bench_cases(n: int = 3000) -> list[tuple[Any, str, list[tuple[str, str, str, str, str]]]]:
    """``bench_notify.py``'s alerts (classified once, cached in the temp directory), matched against
    ``vigil bench``'s subscriptions (the catch-all and 10,000 others), some with hostile targets too."""
    import importlib.util

    from vigil_notify.classified import decode_classified
    from vigil_notify.delivery import idempotency_key
    from vigil_notify.matching import SubscriptionIndex, match
    from vigil_notify.subscriptions import Subscription
    from vigil_shared.bench import make_subscriptions

    spec = importlib.util.spec_from_file_location("_bench_notify", ROOT / "services/notify/benchmarks/bench_notify.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    events = [decode_classified(body) for body in bench.load_events(n)]
    doc = make_subscriptions(10_000, "jsonl:///tmp/vigil-perf8-render/all.jsonl")
    index = SubscriptionIndex([Subscription.model_validate(s) for s in doc["subscriptions"]])
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    cases = []
    for i, ev in enumerate(events):
        a = ev.alert
        targets = [
            (m.subscription.id, url, m.subscription.name, m.explanation,
             idempotency_key(a.alert_id, a.revision, m.subscription.id, url))
            for m in match(ev, index, now) for url in m.subscription.channels
        ]  # fmt: skip
        if i % 20 == 0:
            targets += _targets(i, True)
        cases.append((ev, "new" if i % 10 else ("update", "cancel")[i % 20 // 10], targets))
    return cases


def run_all() -> dict[str, dict[str, int]]:
    """Every check, on the odd alerts and on the bench's (what the compiled run prints)."""
    return {"odd": check_alerts(_odd_cases()), "bench": check_alerts(_bench_cases())}


# ------------------------------------------------------------------------------------------ the tests


def test_odd_alerts_write_what_the_replaced_code_and_the_contract_write() -> None:
    counts = check_alerts(_odd_cases())
    assert counts["lines"] > 400
    assert counts["filled"] > 300
    assert counts["raised"] > 20
    assert counts["bodies"] > 80
    assert counts["data"] > 400


def test_the_bench_alerts_write_what_the_replaced_code_and_the_contract_write() -> None:
    cases = _bench_cases()
    assert len(cases) == 3000
    counts = check_alerts(cases)
    assert counts["lines"] > 9000
    assert counts["filled"] > 9000
    assert counts["data"] > 9000


_COMPILED = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from vigil_notify import native
from notify.test_perf8_render_outputs import run_all
print(json.dumps([native.active(), run_all()]))
"""


@pytest.mark.slow  # compiles notify's four modules (~40 CPU-s)
@pytest.mark.skipif(not native_support.can_compile(), reason="needs mypyc and a C compiler")
def test_the_compiled_build_writes_the_same(tmp_path: Path) -> None:
    env = {"VIGIL_NOTIFY_NATIVE_DIR": str(tmp_path), "VIGIL_NOTIFY_NATIVE": "1"}
    native_support.build("vigil_notify", env)
    done = subprocess.run(
        [sys.executable, "-c", _COMPILED, str(TESTS)], env={**os.environ, **env}, cwd=ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    active, counts = json.loads(done.stdout.splitlines()[-1])
    assert active
    assert counts["bench"]["lines"] > 9000
    assert counts["odd"]["raised"] > 20


def test_filled_messages_keep_their_fill_in_a_slot_and_behave_as_before() -> None:
    """A filled message holds its delivery's values in its ``_fill`` slot (no instance dict until a
    part is made): ``_filled`` (compiled) and ``FilledMessage(...)`` make the same; the title is the
    prepared message's, the key the delivery's; a payload handed out (and changed) is what the line
    is made of from then on, as before, and it is in the instance dict as :class:`LazyMessage` keeps it."""
    from vigil_notify.channels.base import Message
    from vigil_notify.filled import FilledMessage
    from vigil_notify.rendering import Renderer, _filled, json_lines_bytes

    from .helpers import make_alert

    r = Renderer()
    for alert in [make_alert(), *list(odd_alerts())[:6]]:
        prepared = r.prepare(alert, kind="update", sent_at=SENT_AT)
        if not prepared._fast:
            continue
        for args in [("why", "s1", "Name", "k" * 32), ("", "", "", ""), ("Zürich 😀", "s\x1f2", 'a "b"', "key")]:
            got, want = _filled(prepared, *args), FilledMessage(prepared, *args)
            assert type(got) is FilledMessage
            assert got._fill == want._fill == (prepared, *args)
            assert got.__dict__ == {}
            assert (got.title, got.idempotency_key) == (prepared._title, args[3])
            full = r.render(alert, kind="update", reason=args[0], subscription_id=args[1],
                            subscription_name=args[2], idempotency_key=args[3])  # fmt: skip
            line = got.json_line_bytes()
            assert line == want.json_line_bytes() == json_lines_bytes([got])[0] == _contract_line(full, SENT_AT)
            assert got.json_line() == want.json_line() == line.decode()[:-1]
            assert (got.title, got.text, got.markdown, got.html) == (full.title, full.text, full.markdown, full.html)
            assert got == want
            payload = got.payload
            assert got.payload is payload
            assert got.__dict__["payload"] is payload
            assert len(got._fill) == 6
            assert got.json_line_bytes() == line == Message.json_line_bytes(got)
            payload["reason"] = "changed"
            changed = Message.json_line_bytes(got)
            assert b'"reason": "changed"' in changed
            assert got.json_line_bytes() == json_lines_bytes([got])[0] == changed
            assert got.json_line() == Message.json_line(got)
            assert got.idempotency_key == args[3]
