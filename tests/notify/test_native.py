"""The optional native build (vigil_notify.native): used only when it matches the source, and then
matching, rendering and the notifier's batch path exactly as the pure modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import native_support
import pytest

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = "vigil_notify"

# Generates alerts and subscriptions (seeded), then prints whether the compiled modules were the ones
# used, then one JSON line per alert: its matches (index and scan) with their explanations, and for
# some of them the messages rendered every way notify renders them (prepared, full, digest).
_MATCH_AND_RENDER = r"""
import json, random, sys
sys.path.insert(0, sys.argv[1])
from notify.helpers import NOW, make_alert, make_sub
from vigil_notify import native
from vigil_notify.matching import SubscriptionIndex, match, match_scan
from vigil_notify.rendering import DigestItem, Renderer
from vigil_shared.events import SEVERITIES, TARGET_TYPES, THREAT_TYPES, URGENCIES

print(json.dumps(native.active()))
rnd = random.Random(20261126)
NAMES = ["Moscow", "Saint Petersburg", "Istanbul", "Paris", "Sankt-Peterburg", "St. Petersburg", "İzmir"]
CCS = ["RU", "TR", "FR", "US"]
SENT_AT = "2026-11-25T12:00:00+00:00"
HOSTILE = ['<b>x</b> & "q" *m* _u_ [l](u)', "plain", "Zürich — ünïcödé", "a\x00b", "\\ back \\n slash"]

def coord():
    return round(rnd.uniform(-60, 70), 3), round(rnd.uniform(-180, 180), 3)

subs = []
for i in range(400):
    f = {}
    if rnd.random() < 0.3:
        f["countries"] = rnd.sample(CCS, rnd.randint(1, 2))
    if rnd.random() < 0.4:
        f["places"] = [rnd.choice([rnd.choice(NAMES), f"{rnd.choice(NAMES)}, {rnd.choice(CCS)}",
                                   rnd.randint(1, 6)]) for _ in range(rnd.randint(1, 2))]
    if rnd.random() < 0.4:
        lat, lon = coord()
        f["near"] = {"lat": lat, "lon": lon, "radius_km": rnd.choice([5, 50, 500, 3000, 9000])}
    if rnd.random() < 0.4:
        f["threat_types"] = rnd.sample(list(THREAT_TYPES), rnd.randint(1, 2))
    if rnd.random() < 0.2:
        f["target_types"] = rnd.sample(list(TARGET_TYPES), rnd.randint(1, 2))
    f["min_severity"] = rnd.choice(SEVERITIES)
    f["min_urgency"] = rnd.choice(URGENCIES) if rnd.random() < 0.3 else "Unknown"
    f["include_non_threats"] = rnd.random() < 0.3
    if rnd.random() < 0.2:
        f["active"] = {"from": "2026-01-01", "until": rnd.choice(["2026-06-01", "2027-01-01"])}
    sub = make_sub(f"s{i:03d}-" + rnd.choice(["a", "b"]), **f)
    subs.append(sub.model_copy(update={"name": rnd.choice(HOSTILE) + f" {i}"}))
index = SubscriptionIndex(subs)
renderer = Renderer()
for n in range(int(sys.argv[2])):
    locs = []
    for _ in range(rnd.randint(0, 3)):
        lat, lon = coord()
        coords = rnd.random() < 0.7
        locs.append({"name": rnd.choice(NAMES), "country_code": rnd.choice(CCS),
                     "geonameid": rnd.choice([None, 1, 2, 3, 4, 5, 6]),
                     "kind": rnd.choice(["city", "region", "country"]),
                     "latitude": lat if coords else None, "longitude": lon if coords else None})
    alert = make_alert(
        alert_id=f"gen-{n}", locations=tuple(locs), countries=tuple(rnd.sample(CCS, rnd.randint(0, 2))),
        threats=tuple(rnd.sample(list(THREAT_TYPES), rnd.randint(0, 3))),
        targets=tuple(rnd.sample(list(TARGET_TYPES), rnd.randint(0, 2))),
        severity=rnd.choice(SEVERITIES), urgency=rnd.choice(URGENCIES), is_threat=rnd.random() < 0.85,
        title=rnd.choice(HOSTILE) + f" alert {n}", text=" ".join(rnd.choice(HOSTILE) for _ in range(8)),
        revision=rnd.randint(1, 3), url=rnd.choice([None, "https://example.org/a?b=1&c=<2>"]),
    )
    found = match(alert, index, NOW)
    scanned = match_scan(alert, subs, NOW)
    out = {"match": [(m.subscription.id, m.reasons, m.explanation, repr(m)) for m in found],
           "scan": [(m.subscription.id, m.explanation) for m in scanned], "messages": []}
    for m in found[:4]:
        for kind in ("new", "update", "cancel"):
            args = dict(reason=m.explanation, subscription_id=m.subscription.id,
                        subscription_name=m.subscription.name, idempotency_key=f"k{n}")
            fast = renderer.prepare(alert, kind=kind, sent_at=SENT_AT).render(**args)
            line = fast.json_line_bytes().decode()
            if json.loads(line)["sent_at"] != SENT_AT:  # a full render (a NUL in the name): the clock's
                line = json.dumps({**json.loads(line), "sent_at": "now"})
            full = renderer.render(alert, kind=kind, **args)
            out["messages"].append([
                [fast.title, fast.text, fast.markdown, fast.html, line],
                [full.title, full.text, full.markdown, full.html,
                 {k: v for k, v in full.payload.items() if k != "sent_at"}],
            ])
    if found:
        items = [DigestItem(alert_id=alert.alert.alert_id, revision=1, title=alert.alert.title,
                            severity=alert.classification.severity, places=("Moscow",),
                            url=alert.alert.url, reason=m.explanation) for m in found[:3]]
        d = renderer.render_digest(items, subscription_id="d", subscription_name=rnd.choice(HOSTILE))
        out["digest"] = [d.title, d.text, d.markdown, d.html,
                         {k: v for k, v in d.payload.items() if k != "sent_at"}]
    print(json.dumps(out, ensure_ascii=False))
"""


def _run(env: dict[str, str], alerts: int = 600) -> tuple[bool, list[str]]:
    out = native_support.python(_MATCH_AND_RENDER, env, str(TESTS), str(alerts)).splitlines()
    return json.loads(out[0]), out[1:]


# the notifier's own tests (process_many, process, the published data, the lean decode) and the
# delivery's (the ledger's leases and batch scripts, exactly once when Redis is lost after a send, the
# routing state, the fingerprint), run again with the compiled build: the same jobs, events, bytes and
# Redis effects as the pure modules
_NOTIFIER_TESTS = (
    "test_batch.py", "test_notifier.py", "test_delivered_data.py", "test_classified.py",
    "test_notifier_compiled_glue.py", "test_redis_lost_after_send.py", "test_run_batch_paths.py",
    "test_s9_redis_ledger_lease.py", "test_s9_redis_dedup_hash.py", "test_batch_scripts.py",
    "test_delivery_hashes.py", "test_perf8_fp_fingerprint.py", "test_perf8_redis_dedup.py",
    "test_perf8_redis_marks.py", "test_perf8_redis_throttle.py", "test_store_single_flight.py",
)  # fmt: skip
# ...but for the tests that replace a method of a compiled class's instance (read-only there)
_PURE_ONLY = ("test_redis_lost_after_send.py::test_a_batch_whose_claim_states_went_stale_does_not_send_again",)


@pytest.mark.slow  # compiles five modules (~60 CPU-s), then runs the notifier's and delivery's tests with them
@pytest.mark.skipif(not native_support.can_compile(), reason="needs mypyc and a C compiler")
def test_native_build_matches_and_renders_exactly_as_the_pure_modules(tmp_path: Path) -> None:
    env, build, native_out, pure_out = native_support.compiled_and_pure(PACKAGE, "VIGIL_NOTIFY_NATIVE", tmp_path, _run)
    assert len(native_out) == 600
    # the generated cases reach matches and every rendering path (not a comparison of empty lists)
    parsed = [json.loads(line) for line in pure_out]
    assert sum(len(p["match"]) for p in parsed) > 1000
    assert sum(len(p["messages"]) for p in parsed) > 1000
    assert sum("digest" in p for p in parsed) > 100
    assert native_out == pure_out
    native_support.assert_used_only_under_its_digest(PACKAGE, env, build)
    # the compiled notifier is the one imported, and passes the notifier's tests
    where = native_support.python("import vigil_notify.notifier as n; print(n.__file__)", env).strip()
    assert where.startswith(str(build)), where
    assert not where.endswith(".py"), where
    here = Path(__file__).resolve().parent
    tests = [str(here / t) for t in _NOTIFIER_TESTS]
    skip = [f"--deselect={(here / t).relative_to(TESTS.parent)}" for t in _PURE_ONLY]  # (node ids: from the root)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests, *skip],
        env={**os.environ, **env}, cwd=TESTS.parent, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_a_damaged_build_falls_back_to_the_pure_modules(tmp_path: Path) -> None:
    env = {"VIGIL_NOTIFY_NATIVE_DIR": str(tmp_path), "VIGIL_NOTIFY_NATIVE": "1"}
    build = tmp_path / native_support.digest(PACKAGE, env)
    (build / "vigil_notify").mkdir(parents=True)
    suffix = native_support.ext_suffix()
    # the second module damaged: the first loads, and must not stay loaded either
    (build / "vigil_notify" / f"rendering{suffix}").write_bytes(b"not a shared object")
    (build / "COMPLETE").write_text("x\n")
    assert not native_support.active(PACKAGE, env)
    # and the pure modules still match and render
    _compiled, out = _run(env, alerts=50)
    assert len(out) == 50
    assert any(json.loads(line)["messages"] for line in out)


def test_the_digest_follows_the_modules_the_build_is_typed_against(tmp_path: Path) -> None:
    """An edit to a module the compiled ones read from (a model's field type, say) gives a new
    digest, so a build compiled against the old types is never used with the new ones."""
    from vigil_notify import native
    from vigil_shared.native import NativeBuild

    assert {"subscriptions.py", "filled.py", "channels/base.py"} <= set(native._BUILD.support)
    assert not {f"{name}.py" for name in native.NATIVE_MODULES} & set(native._BUILD.support)
    (tmp_path / "hot.py").write_text("X = 1\n")
    (tmp_path / "models.py").write_text("Y: int = 1\n")
    build = NativeBuild(package="pkg", source_dir=tmp_path, modules=("hot",), support=("models.py",),
                        env_switch="X_NATIVE", env_dir="X_NATIVE_DIR", cache_name="x", probes=("hot",),
                        hash_support=True, depends=("vigil_shared.events",))  # fmt: skip
    before = build.source_digest()
    (tmp_path / "models.py").write_text("Y: str = '1'\n")
    assert build.source_digest() != before
    (tmp_path / "models.py").write_text("Y: int = 1\n")
    assert build.source_digest() == before
    (tmp_path / "hot.py").write_text("X = 2\n")
    assert build.source_digest() != before
