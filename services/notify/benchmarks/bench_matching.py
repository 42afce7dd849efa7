"""Matching cost per alert against 10,000 subscriptions (indexed vs. brute-force scan).

Run: ``uv run python services/notify/benchmarks/bench_matching.py [n_subs] [n_alerts]``.
Instruction counts of the indexed loop alone: ``valgrind --tool=callgrind --instr-atstart=no
--callgrind-out-file=cg.out .venv/bin/python services/notify/benchmarks/bench_matching.py --callgrind``.
Budget: at 5,000 alerts/s notify has 200 µs per alert; matching may use 20% of it (40 µs).
The mix: 35% places, 20% near circles, 43.5% countries, 1% threat-type-only (global), 0.5%
catch-all (targets only), over 600 synthetic cities in 60 countries.
"""

from __future__ import annotations

import os
import random
import statistics
import string
import subprocess
import sys
import time
from datetime import UTC, datetime

from vigil_notify.matching import SubscriptionIndex, match, match_scan
from vigil_notify.subscriptions import Subscription
from vigil_shared.events import (
    THREAT_TYPES,
    AlertClassified,
    AlertReceived,
    Classification,
    LabelScore,
    Location,
)

rng = random.Random(7)
N_COUNTRIES = int(os.environ.get("BENCH_COUNTRIES", "60"))
N_CITIES = int(os.environ.get("BENCH_CITIES", "600"))
COUNTRIES = sorted({"".join(rng.choices(string.ascii_uppercase, k=2)) for _ in range(N_COUNTRIES * 3)})[
    :N_COUNTRIES
]
CITIES = [
    (f"City{i}", rng.choice(COUNTRIES), 100000 + i, rng.uniform(-60, 70), rng.uniform(-180, 180))
    for i in range(N_CITIES)
]
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def callgrind_instrumentation(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (outside the timed region)."""
    subprocess.run(["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True)


def subscription(i: int) -> Subscription:
    r = rng.random()
    f: dict = {"min_severity": rng.choice(["Unknown", "Minor", "Moderate", "Severe"])}
    if r < 0.35:
        name, cc, gid, *_ = rng.choice(CITIES)
        f["places"] = [rng.choice([name, f"{name}, {cc}", gid])]
    elif r < 0.55:
        _, _, _, lat, lon = rng.choice(CITIES)
        lon = max(-180.0, min(180.0, lon + rng.uniform(-1, 1)))
        f["near"] = {"lat": lat + rng.uniform(-1, 1), "lon": lon,
                     "radius_km": rng.uniform(10, 300)}  # fmt: skip
    elif r < 0.985:
        f["countries"] = rng.sample(COUNTRIES, k=rng.randint(1, 3))
    elif r < 0.995:
        f["threat_types"] = rng.sample(THREAT_TYPES, k=rng.randint(1, 2))
    else:
        f["target_types"] = ["hotels"]
    if rng.random() < 0.3:
        f["threat_types"] = rng.sample(THREAT_TYPES, k=2)
    return Subscription.model_construct(
        id=f"s{i}", name=f"s{i}", owner="", channels=("console://",),
        filter=Subscription.model_validate({"name": "x", "channels": ["console://"], "filter": f}).filter,
        enabled=True, managed_by=None,
    )  # fmt: skip


def alert(i: int) -> AlertClassified:
    cities = rng.sample(CITIES, k=rng.randint(1, 3))
    locs = tuple(Location(name=n, country_code=cc, geonameid=g, latitude=la, longitude=lo)
                 for n, cc, g, la, lo in cities)  # fmt: skip
    received = AlertReceived(correlation_id="c", producer="b", alert_id=f"a{i}", source_kind="api",
                             source_name="b", title="t", text="x")  # fmt: skip
    cls = Classification(
        id="c", is_threat=True, classifier_version="b", locations=locs,
        countries=tuple({loc.country_code for loc in locs}),
        threat_types=tuple(LabelScore(type=t, confidence=0.9) for t in rng.sample(THREAT_TYPES, k=1)),
        severity=rng.choice(["Minor", "Moderate", "Severe", "Extreme"]), urgency="Expected",
    )  # fmt: skip
    return AlertClassified(correlation_id="c", producer="b", alert=received, classification=cls)


def main() -> None:
    callgrind = "--callgrind" in sys.argv  # under valgrind --tool=callgrind --instr-atstart=no: the indexed loop only
    args = [a for a in sys.argv[1:] if a != "--callgrind"]
    n_subs = int(args[0]) if len(args) > 0 else 10_000
    n_alerts = int(args[1]) if len(args) > 1 else 2_000
    subs = [subscription(i) for i in range(n_subs)]
    t0 = time.perf_counter()
    index = SubscriptionIndex(subs)
    build = time.perf_counter() - t0
    alerts = [alert(i) for i in range(n_alerts)]
    for a in alerts[:50]:  # correctness spot check
        got = [m.subscription.id for m in match(a, index, NOW)]
        assert got == [m.subscription.id for m in match_scan(a, subs, NOW)]
    samples, hits = [], []
    if callgrind:
        callgrind_instrumentation("on")
    for a in alerts:
        t = time.perf_counter()
        hits.append(len(match(a, index, NOW)))
        samples.append(time.perf_counter() - t)
    if callgrind:
        callgrind_instrumentation("off")
    t = time.perf_counter()
    for a in alerts[:20]:
        match_scan(a, subs, NOW)
    scan = (time.perf_counter() - t) / 20
    mean = statistics.mean(samples) * 1e6
    p99 = sorted(samples)[int(len(samples) * 0.99)] * 1e6
    print(f"subscriptions={n_subs} index_build={build * 1e3:.0f} ms alerts={n_alerts}")
    per = mean / max(statistics.mean(hits), 1)
    print(
        f"indexed match: mean {mean:.1f} µs, p99 {p99:.1f} µs, mean matches {statistics.mean(hits):.1f}"
        f" ({per:.1f} µs per match)"
    )
    print(f"brute-force scan: {scan * 1e6:.0f} µs per alert")
    print(f"budget 40 µs (20% of 200 µs): {'OK' if mean <= 40 else 'OVER'}")


if __name__ == "__main__":
    main()
