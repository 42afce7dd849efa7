"""Throughput benchmark: varied ~1 KB alerts from templates, classified on one core.

Reports alerts/s, the gazetteer start-up time and peak RSS. Targets: >= 5,000 alerts/s,
start-up <= 2 s, RSS <= 300 MB.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from dataclasses import dataclass

_PLACES = [
    ("Moscow", "Russia"),
    ("Istanbul", "Turkey"),
    ("Nairobi", "Kenya"),
    ("Lagos", "Nigeria"),
    ("Karachi", "Pakistan"),
    ("Bogota", "Colombia"),
    ("Lima", "Peru"),
    ("Manila", "Philippines"),
    ("Jakarta", "Indonesia"),
    ("Cairo", "Egypt"),
    ("Beirut", "Lebanon"),
    ("Kyiv", "Ukraine"),
    ("Paris", "France"),
    ("London", "United Kingdom"),
    ("Bangkok", "Thailand"),
    ("Dhaka", "Bangladesh"),
    ("Mexico City", "Mexico"),
    ("Port-au-Prince", "Haiti"),
    ("Addis Ababa", "Ethiopia"),
    ("Kampala", "Uganda"),
    ("Tbilisi", "Georgia"),
    ("Athens", "Greece"),
    ("Seoul", "South Korea"),
    ("Caracas", "Venezuela"),
    ("Bamako", "Mali"),
    ("Kinshasa", "Democratic Republic of the Congo"),
    ("Quito", "Ecuador"),
    ("Islamabad", "Pakistan"),
    ("Tunis", "Tunisia"),
    ("Amman", "Jordan"),
]
_EVENTS = [
    "Extremist groups continue to plan attacks against {t1} and {t2}, and the Embassy has received reports "
    "of specific threats.",
    "Opposition groups have announced demonstrations near {t1}; previous protests turned violent and police "
    "used tear gas.",
    "A magnitude {mag} earthquake struck the region early this morning, damaging buildings "
    "and closing roads.",
    "Health authorities report a sharp rise in dengue and cholera cases in several districts.",
    "Armed criminal groups have carried out express kidnappings of travellers leaving {t1}.",
    "Rail unions have announced a strike next week; flights may be cancelled and {t1} will be crowded.",
    "Missile and drone strikes overnight hit energy infrastructure; further strikes are likely.",
    "Scammers are operating phishing websites that imitate official appointment systems.",
    "The Embassy will be closed on Monday for a federal holiday; routine passport services resume Tuesday.",
    "A typhoon is forecast to make landfall within 36 hours with destructive winds and storm surge.",
]
_TARGETS = [
    "shopping malls",
    "railway and metro stations",
    "churches and synagogues",
    "hotels",
    "government buildings",
    "schools",
    "places frequented by Westerners",
    "markets",
    "concert venues",
    "the international airport",
    "tourist sites",
    "embassies",
]
_ADVICE = [
    "Actions to take: Avoid crowds. Monitor local media for updates. Review your personal security plans.",
    "Actions to take: Keep a low profile. Be aware of your surroundings. Carry identification.",
    "Actions to take: Follow the instructions of local authorities. Keep your phone charged.",
    "Actions to take: Have evacuation plans that do not rely on U.S. government assistance.",
]


def make_alerts(n: int, seed: int = 7, size: int = 1000) -> list[tuple[str, str]]:
    """``n`` varied (title, text) pairs of roughly ``size`` characters each."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        city, country = rnd.choice(_PLACES)
        city2, _c2 = rnd.choice(_PLACES)
        parts = [f"Location: {city} and surrounding areas, {country}."]
        while sum(len(p) + 1 for p in parts) < size - 120:
            event = rnd.choice(_EVENTS).format(
                t1=rnd.choice(_TARGETS), t2=rnd.choice(_TARGETS), mag=f"{rnd.uniform(4.5, 7.9):.1f}"
            )
            parts.append(f"Event: {event}")
            if rnd.random() < 0.3:
                parts.append(f"Travel to {city2} is also affected.")
            parts.append(rnd.choice(_ADVICE))
        title = f"Security Alert: {rnd.choice(['Update', 'Warning', 'Notice'])} for {city}"
        out.append((title, " ".join(parts)[: size + 200]))
    return out


@dataclass(slots=True)
class BenchResult:
    alerts: int
    seconds: float
    alerts_per_s: float
    startup_s: float
    mean_chars: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0
    """CPU time of the classifying loop: on a shared machine this, not wall time, is the cost."""
    startup_cpu_s: float = 0.0

    @property
    def alerts_per_cpu_s(self) -> float:
        return self.alerts / self.cpu_seconds if self.cpu_seconds else float("inf")


def peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024


def run(n: int = 20_000, seed: int = 7) -> BenchResult:
    """Time start-up (gazetteer + taxonomy) and classification of ``n`` generated alerts."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    from vigil_classify.engine import Classifier

    clf = Classifier()
    startup = time.perf_counter() - t0
    startup_cpu = time.process_time() - c0
    alerts = make_alerts(n, seed)
    # The service's path: the result as JSON data, validated by the consumers at their edge
    # (``Classifier.classify`` adds one pydantic validation of the nested result).
    classify = clf.classify_payload
    classify(alerts[0][1], title=alerts[0][0])
    t1 = time.perf_counter()
    c1 = time.process_time()
    for title, text in alerts:
        classify(text, title=title)
    secs = time.perf_counter() - t1
    cpu = time.process_time() - c1
    mean = sum(len(t) + len(x) + 2 for t, x in alerts) / len(alerts)
    return BenchResult(
        n, secs, n / secs if secs else float("inf"), startup, mean, peak_rss_mb(), cpu, startup_cpu
    )
