"""The batch handler's per-event histogram share is recorded as one update per batch; the samples
must be those of observing the share once per event."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from vigil_shared.worker import _observe_many


def samples(h: Histogram) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in h.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


def test_observe_many_equals_observing_n_times() -> None:
    buckets = (0.001, 0.01, 0.1, 1.0)
    for value, n in ((0.0002, 200), (0.001, 3), (0.05, 7), (5.0, 2), (0.0, 1)):
        reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
        a = Histogram("h", "h", ["x"], buckets=buckets, registry=reg_a)
        b = Histogram("h", "h", ["x"], buckets=buckets, registry=reg_b)
        for _ in range(n):
            a.labels(x="1").observe(value)
        _observe_many(b.labels(x="1"), value, n)
        got, want = samples(b), samples(a)
        assert got.keys() == want.keys()
        for k in want:
            assert abs(got[k] - want[k]) < 1e-9, (value, n, k)
