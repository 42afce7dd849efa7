"""``vigil bench`` / ``make bench``: the pipeline's throughput and latency beside a plain-Redis ceiling.

One run starts a private Redis and measures, in this order:

1. **ceiling** - three plain redis-py relays in three OS processes (``XREADGROUP COUNT`` -> one
   pipeline of ``XADD`` + ``XACK`` per batch), three hops, the same payloads as Vigil's
   ``AlertReceived`` entries, no validation; ``--ceiling-factor`` (5) times as many alerts as a
   pipeline case (its payloads cycled), so the ceiling is measured over a few seconds, as the
   pipeline's cases are, not over a ~1 s burst: the same median, a fraction of the spread (on this
   project's 2-core machine, 4 alternating pairs: 20,000 alerts 15,358-24,803/s, median 20,910;
   100,000 alerts 19,601-21,475/s, median 20,935);
2. **stream** - ingest, classify and notify as separate OS processes (``vigil run <service>``, as
   compose runs them); generated, varied ~1 KB alerts are published as ``AlertReceived`` events
   straight onto ingest's output stream (``vigil.alerts.received``) in pipelined batches;
3. **http** - the same, but the alerts enter through ingest's HTTP batch API
   (``POST /v1/alerts:batch`` with an API key);
4. **steady** - a paced load (``--rate`` alerts/s for ``--duration`` s) through the stream, for the
   latency percentiles under that load;
5. optionally the stream case again with 1, 2, 3 ... classify replicas (``--classify-replicas``).

``--repeat N`` runs the flood cases in N rounds, each round the ceiling, then every stream case, then
the HTTP case, so each ratio is to the ceiling measured moments before it (the machine's speed
drifts between minutes); the table gets one row per case per round (``"stream, 1 classify #2"``) and
a summary per case follows it: median, min and max alerts/s and ratio over the rounds, and how many
rounds reached ``TARGET_RATIO`` (``summarize``). The steady case runs once, after the last round.

notify holds one catch-all subscription (JSONL channel) plus ``--subscriptions`` others spread
over the world (countries, places, circles, threat types, severities; their channel is
``jsonl:///dev/null``), loaded from a YAML file as an operator would.

Figures per case: alerts/s sustained (alerts / (last catch-all delivery - first alert in)),
end-to-end latency p50/p95/p99 (from ``AlertReceived.occurred_at``, or for the HTTP case from the
moment the alert's request was sent, to the ``sent_at`` of the catch-all's JSONL record), CPU seconds
and peak RSS per service process, Redis memory (sampled through the run: peak and a timeline), the
stream lengths left after lag-aware retention, how many catch-all records arrived (and duplicates),
and the ratio to the ceiling. ``--json`` writes them. The services run with
``VIGIL_RETENTION_MAX_LEN=--retention`` (10,000 by default, smaller than a run), so the Redis memory
figures show retention bounding the streams; latencies come from the JSONL file, not from the
trimmed streams.

This module imports no service package: it drives the services only as processes, over Redis and
HTTP. The relay processes run ``python -m vigil_shared.bench relay ...``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import redis as redis_sync
import typer
from redis.asyncio import Redis

from vigil_shared import streams
from vigil_shared.demo import service_process
from vigil_shared.embedded_redis import EmbeddedRedis, free_port
from vigil_shared.envelope import encode_event_sync
from vigil_shared.events import AlertReceived

CATCH_ALL = "bench-all"
CATCH_ALL_FILE = "catch-all.jsonl"
SERVICES = ("ingest", "classify", "notify")
TARGET_RATIO = 0.2
"""Issue 9's target: Vigil's alerts/s at least this fraction of the ceiling of the same run."""

# ------------------------------------------------------------------------------------- alert texts

_PLACES: tuple[tuple[str, str], ...] = (
    ("Moscow", "Russia"), ("Saint Petersburg", "Russia"), ("Istanbul", "Turkey"), ("Ankara", "Turkey"),
    ("Nairobi", "Kenya"), ("Mombasa", "Kenya"), ("Lagos", "Nigeria"), ("Abuja", "Nigeria"),
    ("Karachi", "Pakistan"), ("Lahore", "Pakistan"), ("Bogota", "Colombia"), ("Medellin", "Colombia"),
    ("Lima", "Peru"), ("Manila", "Philippines"), ("Cebu", "Philippines"), ("Jakarta", "Indonesia"),
    ("Surabaya", "Indonesia"), ("Cairo", "Egypt"), ("Alexandria", "Egypt"), ("Beirut", "Lebanon"),
    ("Kyiv", "Ukraine"), ("Kharkiv", "Ukraine"), ("Odesa", "Ukraine"), ("Paris", "France"),
    ("Marseille", "France"), ("London", "United Kingdom"), ("Manchester", "United Kingdom"),
    ("Bangkok", "Thailand"), ("Chiang Mai", "Thailand"), ("Dhaka", "Bangladesh"), ("Mexico City", "Mexico"),
    ("Guadalajara", "Mexico"), ("Monterrey", "Mexico"), ("Port-au-Prince", "Haiti"),
    ("Addis Ababa", "Ethiopia"), ("Kampala", "Uganda"), ("Tbilisi", "Georgia"), ("Athens", "Greece"),
    ("Seoul", "South Korea"), ("Busan", "South Korea"), ("Caracas", "Venezuela"), ("Bamako", "Mali"),
    ("Kinshasa", "Democratic Republic of the Congo"), ("Quito", "Ecuador"), ("Guayaquil", "Ecuador"),
    ("Islamabad", "Pakistan"), ("Tunis", "Tunisia"), ("Amman", "Jordan"), ("Baghdad", "Iraq"),
    ("Erbil", "Iraq"), ("Tehran", "Iran"), ("Riyadh", "Saudi Arabia"), ("Dubai", "United Arab Emirates"),
    ("Mumbai", "India"), ("New Delhi", "India"), ("Kolkata", "India"), ("Colombo", "Sri Lanka"),
    ("Kathmandu", "Nepal"), ("Yangon", "Myanmar"), ("Hanoi", "Vietnam"), ("Tokyo", "Japan"),
    ("Osaka", "Japan"), ("Beijing", "China"), ("Shanghai", "China"), ("Sydney", "Australia"),
    ("Johannesburg", "South Africa"), ("Cape Town", "South Africa"), ("Harare", "Zimbabwe"),
    ("Lusaka", "Zambia"), ("Dakar", "Senegal"), ("Accra", "Ghana"), ("Abidjan", "Ivory Coast"),
    ("Khartoum", "Sudan"), ("Mogadishu", "Somalia"), ("Tripoli", "Libya"), ("Algiers", "Algeria"),
    ("Casablanca", "Morocco"), ("Madrid", "Spain"), ("Barcelona", "Spain"), ("Rome", "Italy"),
    ("Berlin", "Germany"), ("Brussels", "Belgium"), ("Stockholm", "Sweden"), ("Warsaw", "Poland"),
    ("Belgrade", "Serbia"), ("Santiago", "Chile"), ("Buenos Aires", "Argentina"), ("La Paz", "Bolivia"),
    ("Sao Paulo", "Brazil"), ("Rio de Janeiro", "Brazil"), ("Havana", "Cuba"), ("Kingston", "Jamaica"),
    ("Tegucigalpa", "Honduras"), ("Managua", "Nicaragua"), ("Toronto", "Canada"), ("Chicago", "United States"),
)  # fmt: skip
_EVENTS: tuple[str, ...] = (
    "Extremist groups continue to plan attacks against {t1} and {t2}; the authorities have received reports "
    "of specific threats.",
    "Opposition groups have announced demonstrations near {t1} on {day}; previous protests turned violent and "
    "police used tear gas and water cannon.",
    "A magnitude {mag} earthquake struck the region {when}, damaging buildings and closing roads.",
    "Health authorities report a sharp rise in dengue and cholera cases in several districts.",
    "Armed criminal groups have carried out express kidnappings of travellers leaving {t1}.",
    "Rail and airport unions have announced a strike on {day}; flights may be cancelled and {t1} will be crowded.",
    "Missile and drone strikes {when} hit energy infrastructure near {city}; further strikes are likely.",
    "Scammers are operating phishing websites that imitate official visa appointment systems.",
    "The office will be closed on {day} for a public holiday; routine passport services resume the next day.",
    "A tropical cyclone is forecast to make landfall within 36 hours with destructive winds and storm surge.",
    "Pickpocketing and bag snatching are common around {t1}, especially after dark.",
    "Flooding after days of heavy rain has cut roads around {city}; more rain is expected in the coming days.",
    "Clashes between armed groups continue in the north of the country; heavy gunfire was reported {when}.",
    "A bomb threat at {t1} led to an evacuation; the area has since reopened.",
)
_TARGETS: tuple[str, ...] = (
    "shopping malls", "railway and metro stations", "churches and synagogues", "hotels",
    "government buildings", "schools", "places frequented by Westerners", "markets", "concert venues",
    "the international airport", "tourist sites", "embassies", "bus terminals", "mosques", "stadiums",
)  # fmt: skip
_ADVICE: tuple[str, ...] = (
    "Actions to take: Avoid crowds. Monitor local media for updates. Review your personal security plans.",
    "Actions to take: Keep a low profile. Be aware of your surroundings. Carry identification.",
    "Actions to take: Follow the instructions of local authorities. Keep your phone charged.",
    "Actions to take: Have evacuation plans that do not rely on government assistance.",
    "Actions to take: Reconsider travel to the affected areas and check with your airline before leaving.",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WHEN = ("early this morning", "overnight", "this afternoon", "last night", "on Sunday")


def make_texts(n: int, seed: int = 11, size: int = 1000) -> list[tuple[str, str]]:
    """``n`` varied (title, text) pairs of about ``size`` characters, each with a unique reference."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        city, country = rnd.choice(_PLACES)
        city2, _ = rnd.choice(_PLACES)
        parts = [f"Location: {city} and surrounding areas, {country}. Reference BN-{i:07d}."]
        while sum(len(p) + 1 for p in parts) < size - 60:
            event = rnd.choice(_EVENTS).format(
                t1=rnd.choice(_TARGETS),
                t2=rnd.choice(_TARGETS),
                mag=f"{rnd.uniform(4.5, 7.9):.1f}",
                day=rnd.choice(_DAYS),
                when=rnd.choice(_WHEN),
                city=city,
            )
            parts.append(f"Event: {event}")
            if rnd.random() < 0.3:
                parts.append(f"Travel to {city2} is also affected.")
            parts.append(rnd.choice(_ADVICE))
        kind = rnd.choice(("Security Alert", "Demonstration Alert", "Health Alert", "Weather Alert", "Message"))
        out.append((f"{kind}: {rnd.choice(('Update', 'Warning', 'Notice'))} for {city}", " ".join(parts)))
    return out


# ----------------------------------------------------------------------------------- subscriptions

_COUNTRY_CODES: tuple[str, ...] = tuple(
    """
    RU TR KE NG PK CO PE PH ID EG LB UA FR GB TH BD MX HT ET UG GE GR KR VE ML CD EC TN JO IQ
    IR SA AE IN LK NP MM VN JP CN AU ZA ZW ZM SN GH CI SD SO LY DZ MA ES IT DE BE SE PL RS CL
    AR BO BR CU JM HN NI CA US NO FI DK NL PT IE AT CH CZ SK HU RO BG HR SI BA AL MK MD BY LT
    LV EE KZ UZ KG TJ AF YE OM QA KW BH IL SY CY MT IS NZ PG FJ MN KH LA MY SG BN TW HK MO BT
    MV
    """.split()  # noqa: SIM905
)
_THREATS = (
    "terrorism", "civil_unrest", "armed_conflict", "crime", "kidnapping", "natural_disaster", "health",
    "transport_disruption", "cyber",
)  # fmt: skip
_SEVERITIES = ("Unknown", "Minor", "Moderate", "Severe", "Extreme")


_OTHER_CITIES: tuple[str, ...] = (
    "Oslo", "Helsinki", "Copenhagen", "Dublin", "Lisbon", "Porto", "Vienna", "Prague", "Budapest", "Bucharest",
    "Sofia", "Zagreb", "Ljubljana", "Sarajevo", "Tirana", "Skopje", "Vilnius", "Riga", "Tallinn", "Minsk",
    "Almaty", "Tashkent", "Bishkek", "Dushanbe", "Kabul", "Muscat", "Doha", "Kuwait City", "Manama",
    "Nicosia", "Valletta", "Reykjavik", "Auckland", "Wellington", "Suva", "Ulaanbaatar", "Phnom Penh",
    "Vientiane", "Kuala Lumpur", "Singapore", "Taipei", "Hong Kong", "Perth", "Brisbane", "Melbourne",
    "Vancouver", "Montreal", "Seattle", "Denver", "Houston", "Miami", "Boston", "Atlanta", "Recife",
    "Montevideo", "Asuncion", "Panama City", "Cusco", "Guatemala City", "San Salvador", "Santo Domingo",
    "Luanda", "Maputo", "Windhoek", "Gaborone", "Antananarivo", "Kigali", "Bujumbura", "Dar es Salaam",
    "Lilongwe", "Conakry", "Freetown", "Monrovia", "Niamey", "Ouagadougou", "Lome", "Cotonou", "Yaounde",
    "Libreville", "Brazzaville", "Djibouti", "Asmara", "Juba", "Nouakchott", "Banjul", "Bissau", "Praia",
)  # fmt: skip


def make_subscriptions(n: int, catch_all_channel: str, seed: int = 5) -> dict[str, Any]:
    """A subscriptions document: one catch-all plus ``n`` others spread over the world.

    The others are travellers and desks everywhere: small circles at random points, cities (mostly
    not the ones the generated alerts name), countries with a threat type and a severe minimum, and
    a few worldwide watches of one threat type at Extreme. Few of them match a given alert, as in a
    real deployment, so the case measures matching 10,000 subscriptions, not 10,000 deliveries;
    the table's "notifications" column says how many deliveries there were.
    """
    rnd = random.Random(seed)
    subs: list[dict[str, Any]] = [
        {
            "id": CATCH_ALL,
            "name": "Benchmark catch-all",
            "channels": [catch_all_channel],
            "filter": {"include_non_threats": True},
        }
    ]
    for i in range(n):
        flt: dict[str, Any] = {}
        r = rnd.random()
        if r < 0.65:
            flt["near"] = {
                "lat": round(rnd.uniform(-50, 65), 3),
                "lon": round(rnd.uniform(-180, 180), 3),
                "radius_km": rnd.choice((5, 10, 25, 50)),
            }
        elif r < 0.95:
            flt["places"] = [rnd.choice(_OTHER_CITIES) if rnd.random() < 0.97 else rnd.choice(_PLACES)[0]]
        elif r < 0.999:
            flt["countries"] = [rnd.choice(_COUNTRY_CODES)]
            flt["threat_types"] = rnd.sample(_THREATS, 1)
            flt["min_severity"] = "Extreme"
        else:
            flt["threat_types"] = rnd.sample(_THREATS, 1)
            flt["min_severity"] = "Extreme"
            flt["min_urgency"] = "Immediate"
        if "threat_types" not in flt and rnd.random() < 0.5:
            flt["threat_types"] = rnd.sample(_THREATS, rnd.randint(1, 3))
        subs.append(
            {
                "id": f"sub-{i:05d}",
                "name": f"Traveller {i}",
                "owner": f"t{i}@example.org",
                "channels": ["jsonl:///dev/null"],
                "filter": flt,
            }
        )
    return {"subscriptions": subs}


# ------------------------------------------------------------------------------------ measurements


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc, else psutil)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except OSError:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a process in MB (VmHWM, else the current RSS)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


@dataclass
class ServiceFigures:
    cpu_s: float
    peak_rss_mb: float
    processes: int = 1


@dataclass
class CaseResult:
    case: str
    alerts: int
    seconds: float
    alerts_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    classify_replicas: int = 1
    notify_replicas: int = 1
    target_rate: float | None = None
    services: dict[str, ServiceFigures] = field(default_factory=dict)
    redis_used_mb: float = 0.0
    redis_peak_mb: float = 0.0
    redis_cpu_s: float = 0.0
    stream_lengths: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    deadletters: int = 0
    ratio_to_ceiling: float | None = None
    catch_all_deliveries: int = 0
    """Lines the catch-all subscription's JSONL file received (one per alert when nothing is lost)."""
    catch_all_duplicates: int = 0
    retention_max_len: int = 0
    redis_streams_mb: float = 0.0
    """Of ``redis_used_mb`` at the end, what the streams take (``MEMORY USAGE``, all entries); the
    rest is notify's keyed state (idempotency ledger, recipients, fingerprints, throttles), bounded by
    its TTLs rather than by stream retention."""
    redis_used_mb_timeline: list[float] = field(default_factory=list)
    """Redis ``used_memory`` sampled through the run (MB, at 0, 10, ... 100% of its duration)."""
    redis_commands: dict[str, RedisCommandFigures] = field(default_factory=dict)
    """Redis's own time per command over the case (``INFO commandstats``), the costliest first."""
    classify_native: bool | None = None
    """Whether classify ran its compiled build (``make native``; from its "classifier loaded" log
    line), None when that line was not found."""
    notify_native: bool | None = None
    """The same for notify (its "subscription index built" log line)."""
    round: int | None = 1
    """The round (1..``--repeat``) of a flood case or the ceiling; None for the steady case, which
    runs once, after the rounds."""


@dataclass
class RedisCommandFigures:
    calls: int
    usec: int
    """Time Redis spent executing these calls (µs; scripts include the commands they run)."""


# ------------------------------------------------------------------------------------------ ceiling

RELAY_GROUP = "relay"


def _alert(i: int, title: str, text: str) -> AlertReceived:
    return AlertReceived(
        correlation_id=f"bench-{i}",
        producer="bench",
        alert_id=f"bench-{i:07d}",
        source_kind="api",
        source_name="bench",
        issuer="Benchmark Desk",
        title=title,
        text=text,
    )


def run_ceiling(
    url: str,
    texts: Sequence[tuple[str, str]],
    batch: int,
    progress: Progress,
    redis_pid: int | None = None,
    factor: int = 1,
) -> CaseResult:
    """The three plain relays over ``texts``' payloads, cycled ``factor`` times
    (:data:`BenchOptions.ceiling_factor`)."""
    client = redis_sync.Redis.from_url(url)
    client.flushall()
    hops = [f"bench.relay.{i}" for i in range(4)]
    for s in hops[:3]:
        client.xgroup_create(s, RELAY_GROUP, id="0", mkstream=True)
    payloads = [fields for _alert_id, fields in _stream_entries(texts, 0)] * factor
    n = len(payloads)
    procs = [
        subprocess.Popen([sys.executable, "-m", "vigil_shared.bench_relay", url, hops[i], hops[i + 1], str(n), "500"])
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 60
        while sum(int(client.exists(f"{h}:ready")) for h in hops[:3]) < 3:  # interpreters started
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the relay processes did not start")
            time.sleep(0.05)
        progress.start("ceiling", n)
        redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            pipe = client.pipeline(transaction=False)
            for fields in payloads[i : i + batch]:
                pipe.xadd(hops[0], fields)  # type: ignore[arg-type]
            pipe.execute()
        while (done := int(client.xlen(hops[3]))) < n:
            progress.update(done)
            if any(p.poll() not in (None, 0) for p in procs):
                raise RuntimeError("a relay process died")
            time.sleep(0.002)
        secs = time.perf_counter() - t0
        redis_cpu = cpu_seconds(redis_pid) - redis_before if redis_pid else float("nan")
        progress.done()
        for p in procs:
            p.wait(10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    mem = client.info("memory")
    client.close()
    return CaseResult(
        case="ceiling (3 plain relays)",
        alerts=n,
        seconds=secs,
        alerts_per_s=n / secs,
        p50_ms=float("nan"),
        p95_ms=float("nan"),
        p99_ms=float("nan"),
        max_ms=float("nan"),
        classify_replicas=0,
        redis_cpu_s=redis_cpu,
        redis_used_mb=mem["used_memory"] / 2**20,
        redis_peak_mb=mem["used_memory_peak"] / 2**20,
    )


# ----------------------------------------------------------------------------------------- pipeline


class Progress:
    """A progress line on stderr (rich when it is a terminal, a plain line every few seconds if not)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        self._label = ""
        self._total = 0
        self._last = 0.0
        self.prefix = ""
        """Put before every label and message, e.g. "round 2/5: " while the rounds run."""

    def start(self, label: str, total: int) -> None:
        label = self.prefix + label
        self._label, self._total = label, total
        if not self.enabled:
            return
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                "[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)
        else:
            print(f"[bench] {label}: 0/{total}", file=sys.stderr, flush=True)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
        elif time.monotonic() - self._last > 2.0:
            self._last = time.monotonic()
            print(f"[bench] {self._label}: {done}/{self._total}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.enabled:
            print(f"[bench] {self._label}: done", file=sys.stderr, flush=True)

    def say(self, msg: str) -> None:
        if self.enabled:
            print(f"[bench] {self.prefix}{msg}", file=sys.stderr, flush=True)


@dataclass
class Proc:
    service: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path


@contextmanager
def _service(name: str, env: dict[str, str], workdir: Path, index: int) -> Iterator[Proc]:
    port = free_port()
    env = {**env, "VIGIL_HTTP_PORT": str(port), "VIGIL_HTTP_HOST": "127.0.0.1"}
    with service_process(name, env, workdir, log_name=f"{name}-{index}") as proc:
        yield Proc(name, proc, port, workdir / f"{name}-{index}.log")


def _wait_ready(procs: Sequence[Proc], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        p = pending[0]
        if p.popen.poll() is not None:
            tail = p.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{p.service} exited with {p.popen.returncode} during start-up:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{p.port}/readyz", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{p.service} not ready after {timeout:.0f}s; see {p.log}")
        time.sleep(0.2)


def _start_profilers(procs: Sequence[Proc], out: Path | None, case: str) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") if out is not None else None
    if out is None or spy is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in case).strip("-")
    spies = []
    for i, p in enumerate(procs):
        target = out / f"{slug}.{p.service}-{i}.raw"
        spies.append(
            subprocess.Popen(
                [spy, "record", "--pid", str(p.popen.pid), "-r", "200", "-f", "raw", "-o", str(target)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return spies


def _stop_profilers(spies: Sequence[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output and detaches
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def _group_done(client: redis_sync.Redis, stream: str, group: str) -> int:
    """Entries the group has read and acknowledged."""
    try:
        for g in client.xinfo_groups(stream):
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == group:
                return int(g.get("entries-read") or 0) - int(g["pending"])
    except redis_sync.ResponseError:
        pass
    return 0


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _catch_all_deliveries(path: Path) -> dict[str, list[float]]:
    """alert id -> the ``sent_at`` times of its catch-all deliveries (one, unless something duplicated)."""
    sent: dict[str, list[float]] = {}
    if not path.exists():
        return sent
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                record = orjson.loads(line)
                sent.setdefault(record["alert_id"], []).append(_ts(record["sent_at"]))
    return sent


def _redis_commands(client: redis_sync.Redis, top: int = 8) -> dict[str, RedisCommandFigures]:
    """The ``top`` commands by time Redis spent in them since the last ``CONFIG RESETSTAT``."""
    stats: dict[str, Any] = client.info("commandstats")
    figures = {
        name.removeprefix("cmdstat_"): RedisCommandFigures(int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
        if name.startswith("cmdstat_") and name != "cmdstat_info"
    }
    costliest = sorted(figures.items(), key=lambda kv: kv[1].usec, reverse=True)[:top]
    return dict(costliest)


def _entries_added(client: redis_sync.Redis, stream: str) -> int:
    """Entries ever added to a stream (Redis 7 counts them across trimming), 0 if it does not exist."""
    try:
        info: Any = client.xinfo_stream(stream)
    except redis_sync.ResponseError:
        return 0
    added = info.get("entries-added")
    return int(added) if added is not None else int(info["length"])


class RedisMemorySampler:
    """Samples Redis ``used_memory`` every ``interval`` seconds on a thread while a case runs."""

    def __init__(self, url: str, interval: float = 0.5) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-memory", daemon=True)

    def __enter__(self) -> RedisMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        client = redis_sync.Redis.from_url(self.url)
        try:
            while True:
                try:
                    used = int(client.info("memory")["used_memory"]) / 2**20
                    self.samples.append((time.monotonic(), used))
                except redis_sync.RedisError:
                    pass
                if self._stop.wait(self.interval):
                    return
        finally:
            client.close()

    @property
    def peak_mb(self) -> float:
        return max((m for _, m in self.samples), default=float("nan"))

    def timeline(self, points: int = 11) -> list[float]:
        """``used_memory`` at evenly spaced moments of the run (the nearest sample to each)."""
        if not self.samples:
            return []
        t0, t1 = self.samples[0][0], self.samples[-1][0]
        out = []
        for k in range(points):
            t = t0 + (t1 - t0) * k / max(points - 1, 1)
            out.append(round(min(self.samples, key=lambda s: abs(s[0] - t))[1], 1))
        return out


@dataclass
class PipelineConfig:
    url: str
    workdir: Path
    subscriptions_file: Path
    api_key: str
    api_key_line: str
    batch: int = 500
    classify_replicas: int = 1
    notify_replicas: int = 1
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)
    retention_max_len: int = 10_000
    redis_pid: int | None = None
    profile_dir: Path | None = None
    """When set (and py-spy is installed), each service is sampled by py-spy during the measurement."""


def _env(cfg: PipelineConfig) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": cfg.url,
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_LOG_LEVEL": cfg.log_level,
        "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(cfg.subscriptions_file),
        "VIGIL_API_KEYS": cfg.api_key_line,
        "VIGIL_AUTH_DISABLED": "false",
        "VIGIL_API_RATE_PER_S": "1000000",
        "VIGIL_API_BURST": "1000000",
        # the catch-all is an archive sink: it takes every alert (no per-hour throttle into digests)
        "VIGIL_NOTIFY_THROTTLE_MAX": "1000000000",
        "VIGIL_RETENTION_INTERVAL_S": "2",
        # latencies are read from the catch-all's JSONL file, so streams can be trimmed as in production
        "VIGIL_RETENTION_MAX_LEN": str(cfg.retention_max_len),
        "PYTHONUNBUFFERED": "1",
        **cfg.extra_env,
    }


def _stream_entries(texts: Sequence[tuple[str, str]], offset: int) -> list[tuple[str, dict[bytes, bytes]]]:
    """The ``AlertReceived`` entries for ``texts`` (alert id, stream fields), encoded before the
    clock starts, as the ceiling's payloads are: the feeder's own CPU must not compete with the
    pipeline it measures."""
    out = []
    for j, (title, text) in enumerate(texts):
        event = _alert(offset + j, title, text)
        out.append((event.alert_id, encode_event_sync(event)))
    return out


async def _feed_stream(
    url: str,
    entries: Sequence[tuple[str, dict[bytes, bytes]]],
    batch: int,
    rate: float | None,
    received: dict[str, float],
) -> None:
    """XADD the pre-encoded entries to ingest's output stream in pipelined batches, as fast as
    possible or at ``rate``/s; record each alert's send time (the start of its end-to-end latency)
    in ``received``."""
    redis = Redis.from_url(url)
    try:
        step = max(1, min(batch, round(rate / 100))) if rate else batch  # paced: ~100 batches a second
        t0 = time.perf_counter()
        for i in range(0, len(entries), step):
            if rate:
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            chunk = entries[i : i + step]
            async with redis.pipeline(transaction=False) as pipe:
                for _alert_id, fields in chunk:
                    pipe.xadd(streams.ALERTS_RECEIVED, fields)  # type: ignore[arg-type]
                sent_at = time.time()
                await pipe.execute()
            for alert_id, _fields in chunk:
                received[alert_id] = sent_at
    finally:
        await redis.aclose()


async def _feed_http(
    port: int, key: str, texts: Sequence[tuple[str, str]], batch: int, offset: int, received: dict[str, float]
) -> None:
    """POST the alerts to ingest's batch API, two requests in flight; each alert's latency starts when
    its request is sent (so it includes ingest's own work)."""
    url = f"http://127.0.0.1:{port}/v1/alerts:batch"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    chunks = [
        orjson.dumps(
            [
                {"id": f"bench-{offset + j:07d}", "title": t, "text": x, "issuer": "Benchmark Desk"}
                for j, (t, x) in enumerate(texts[i : i + batch], start=i)
            ]
        )
        for i in range(0, len(texts), batch)
    ]
    sem = asyncio.Semaphore(2)
    async with httpx.AsyncClient(timeout=120) as client:

        async def post(body: bytes) -> None:
            async with sem:
                sent_at = time.time()
                r = await client.post(url, content=body, headers=headers)
                if r.status_code != 202:
                    raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                for item in r.json()["results"]:
                    received[item["alert_id"]] = sent_at

        await asyncio.gather(*(post(c) for c in chunks))


def run_pipeline(
    cfg: PipelineConfig,
    texts: Sequence[tuple[str, str]],
    *,
    case: str,
    entry: str = "stream",
    rate: float | None = None,
    progress: Progress,
    timeout: float = 600.0,
    profile_label: str | None = None,
) -> CaseResult:
    """Start the three services, push ``texts`` through them, measure, stop them.

    ``profile_label`` names the py-spy files (default ``case``; a round's label when repeated)."""
    client = redis_sync.Redis.from_url(cfg.url)
    client.flushall()
    env = _env(cfg)
    catch_all = cfg.workdir / CATCH_ALL_FILE
    catch_all.unlink(missing_ok=True)
    received: dict[str, float] = {}
    entries = _stream_entries(texts, 0) if entry != "http" else []
    with ExitStack() as stack:
        procs: list[Proc] = []
        progress.say(f"{case}: starting ingest, {cfg.classify_replicas} x classify, {cfg.notify_replicas} x notify ...")
        procs.append(stack.enter_context(_service("ingest", env, cfg.workdir, 0)))
        for i in range(cfg.classify_replicas):
            procs.append(stack.enter_context(_service("classify", env, cfg.workdir, i)))
        for i in range(cfg.notify_replicas):
            procs.append(stack.enter_context(_service("notify", env, cfg.workdir, i)))
        _wait_ready(procs)
        time.sleep(0.5)
        before = {p.popen.pid: cpu_seconds(p.popen.pid) for p in procs}
        redis_before = cpu_seconds(cfg.redis_pid) if cfg.redis_pid else 0.0
        client.config_resetstat()
        spies = _start_profilers(procs, cfg.profile_dir, profile_label or case)
        n = len(texts)
        progress.start(case, n)
        ingest = procs[0]

        async def feed() -> None:
            if entry == "http":
                await _feed_http(ingest.port, cfg.api_key, texts, cfg.batch, 0, received)
            else:
                await _feed_stream(cfg.url, entries, cfg.batch, rate, received)

        feeder_error: list[BaseException] = []

        def feeder() -> None:
            try:
                asyncio.run(feed())
            except BaseException as exc:  # reported below
                feeder_error.append(exc)

        sampler = stack.enter_context(RedisMemorySampler(cfg.url))
        thread = threading.Thread(target=feeder, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while (done := _group_done(client, streams.ALERTS_CLASSIFIED, streams.GROUP_NOTIFY)) < n:
            progress.update(done)
            if feeder_error:
                raise RuntimeError(f"feeding the pipeline failed: {feeder_error[0]!r}")
            for p in procs:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.service} died; see {p.log}:\n{p.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{case}: only {done}/{n} alerts through notify after {timeout:.0f}s")
            time.sleep(0.05)
        progress.update(n)
        thread.join(10)
        progress.done()
        redis_cpu = cpu_seconds(cfg.redis_pid) - redis_before if cfg.redis_pid else float("nan")
        commands = _redis_commands(client)
        logs = {name: [p.log for p in procs if p.service == name] for name in ("classify", "notify")}
        _stop_profilers(spies)
        services: dict[str, ServiceFigures] = {}
        for p in procs:
            fig = services.setdefault(p.service, ServiceFigures(0.0, 0.0, 0))
            fig.cpu_s += cpu_seconds(p.popen.pid) - before[p.popen.pid]
            fig.peak_rss_mb = max(fig.peak_rss_mb, peak_rss_mb(p.popen.pid))
            fig.processes += 1
        time.sleep(2.5)  # one retention pass
        sampler.__exit__(None, None, None)
        lengths = {s: int(client.xlen(s)) for s in streams.ALL_STREAMS if client.exists(s)}
        mem = client.info("memory")
        streams_mb = sum(int(client.memory_usage(s, samples=0) or 0) for s in lengths) / 2**20
        notifications = _entries_added(client, streams.NOTIFICATIONS)
        dead = _entries_added(client, streams.DEADLETTER)
    client.close()
    deliveries = _catch_all_deliveries(catch_all)
    latencies = [times[0] - received[a] for a, times in deliveries.items() if a in received]
    first = min(received.values()) if received else 0.0
    end = max((t for times in deliveries.values() for t in times), default=0.0)
    secs = end - first if end > first else float("nan")
    lat_ms = [x * 1000 for x in latencies]
    return CaseResult(
        case=case,
        alerts=n,
        seconds=secs,
        alerts_per_s=len(latencies) / secs if secs == secs and secs > 0 else float("nan"),
        p50_ms=percentile(lat_ms, 50),
        p95_ms=percentile(lat_ms, 95),
        p99_ms=percentile(lat_ms, 99),
        max_ms=max(lat_ms) if lat_ms else float("nan"),
        classify_replicas=cfg.classify_replicas,
        notify_replicas=cfg.notify_replicas,
        target_rate=rate,
        services=services,
        redis_used_mb=mem["used_memory"] / 2**20,
        redis_peak_mb=sampler.peak_mb,
        redis_cpu_s=redis_cpu,
        stream_lengths=lengths,
        notifications=notifications,
        deadletters=dead,
        catch_all_deliveries=sum(len(t) for t in deliveries.values()),
        catch_all_duplicates=sum(len(t) - 1 for t in deliveries.values()),
        retention_max_len=cfg.retention_max_len,
        redis_streams_mb=streams_mb,
        redis_used_mb_timeline=sampler.timeline(),
        redis_commands=commands,
        classify_native=_native(logs["classify"], "classifier loaded"),
        notify_native=_native(logs["notify"], "subscription index built"),
    )


def _native(logs: Sequence[Path], event: str) -> bool | None:
    """Whether a service's processes ran its compiled build, from the ``native`` field of the
    ``event`` line each logged at start: all compiled (True), any pure (False), unknown (None)."""
    seen: list[bool] = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                with_native = json.loads(line).get("native")
                if isinstance(with_native, bool):
                    seen.append(with_native)
                break
    return all(seen) if seen else None


# ------------------------------------------------------------------------------------------ driver


@dataclass
class BenchOptions:
    alerts: int = 20_000
    subscriptions: int = 10_000
    batch: int = 500
    http: bool = True
    stream: bool = True
    ceiling: bool = True
    flood: bool = True
    rate: float | None = 1000.0
    duration: float = 30.0
    classify_replicas: tuple[int, ...] = (1,)
    notify_replicas: int = 1
    log_level: str = "INFO"
    progress: bool = True
    profile_dir: Path | None = None
    retention: int = 10_000
    repeat: int = 1
    """Rounds of the flood cases (each: the ceiling, the stream cases, the HTTP case)."""
    ceiling_factor: int = 5
    """The ceiling relays this many times ``alerts`` (the same payloads cycled): a 20,000-alert
    ceiling lasts ~1 s here, a burst whose rate swings +-25% from run to run; over ~5 s, as long as
    a pipeline case, its median is the same and its spread a fifth."""


@dataclass
class Spread:
    """Median, min and max of a figure over the rounds that produced one."""

    median: float
    min: float
    max: float


def spread(values: Sequence[float | None]) -> Spread | None:
    """The median / min / max of ``values``, leaving out None and NaN; None if nothing is left."""
    finite = [v for v in values if v is not None and v == v]
    if not finite:
        return None
    return Spread(median=statistics.median(finite), min=min(finite), max=max(finite))


@dataclass
class CaseSummary:
    """One case over its rounds."""

    rounds: int
    alerts_per_s: Spread | None
    ratio_to_ceiling: Spread | None
    """None for the ceiling itself, or when no ceiling was measured."""
    rounds_at_target: int | None
    """Rounds whose ratio to their own round's ceiling reached ``target_ratio`` (None without ratios)."""
    target_ratio: float = TARGET_RATIO


def summarize(cases: Sequence[CaseResult], target: float = TARGET_RATIO) -> dict[str, CaseSummary]:
    """Per case name, in first-seen order, the spread of its per-round figures. Only cases that ran
    in rounds (``round`` set) count; the steady case (one run) is left out."""
    by_case: dict[str, list[CaseResult]] = {}
    for c in cases:
        if c.round is not None:
            by_case.setdefault(c.case, []).append(c)
    out = {}
    for name, runs in by_case.items():
        ratios = [r.ratio_to_ceiling for r in runs]
        ratio = spread(ratios)
        out[name] = CaseSummary(
            rounds=len(runs),
            alerts_per_s=spread([r.alerts_per_s for r in runs]),
            ratio_to_ceiling=ratio,
            rounds_at_target=None if ratio is None else sum(1 for x in ratios if x is not None and x >= target),
            target_ratio=target,
        )
    return out


@dataclass
class BenchReport:
    options: dict[str, Any]
    cases: list[CaseResult]
    machine: dict[str, Any]
    summary: dict[str, CaseSummary] = field(default_factory=dict)
    """Per flood case (and the ceiling) over the rounds: see ``summarize``."""


def new_api_key() -> tuple[str, str]:
    key = "vigil_" + secrets.token_urlsafe(32)
    return key, f"bench:ingest:{hashlib.sha256(key.encode()).hexdigest()}"


def run(opts: BenchOptions, on_case: Callable[[CaseResult], None] | None = None) -> BenchReport:
    if opts.repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {opts.repeat}")
    if opts.ceiling_factor < 1:
        raise ValueError(f"ceiling_factor must be at least 1, not {opts.ceiling_factor}")
    progress = Progress(opts.progress)
    cases: list[CaseResult] = []

    def add(result: CaseResult) -> None:
        cases.append(result)
        if on_case:
            on_case(result)

    with ExitStack() as stack:
        progress.say("starting a private Redis server ...")
        server = stack.enter_context(EmbeddedRedis())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        subs_file = workdir / "subscriptions.yaml"
        doc = make_subscriptions(opts.subscriptions, f"jsonl://{workdir / CATCH_ALL_FILE}")
        subs_file.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
        key, line = new_api_key()
        texts = make_texts(opts.alerts)
        redis_pid = server.process.pid if server.process is not None else None

        def cfg(replicas: int) -> PipelineConfig:
            return PipelineConfig(
                url=server.url,
                workdir=workdir,
                subscriptions_file=subs_file,
                api_key=key,
                api_key_line=line,
                batch=opts.batch,
                classify_replicas=replicas,
                notify_replicas=opts.notify_replicas,
                log_level=opts.log_level,
                profile_dir=opts.profile_dir,
                redis_pid=redis_pid,
                retention_max_len=opts.retention,
            )

        notify = f", {opts.notify_replicas} notify" if opts.notify_replicas != 1 else ""
        flood: list[tuple[str, int, str]] = []  # (case, classify replicas, entry) of one round, in order
        if opts.flood and opts.stream:
            flood += [
                (f"stream, {replicas} classify{notify}", replicas, "stream") for replicas in opts.classify_replicas
            ]
        if opts.flood and opts.http:
            flood.append((f"http batch API, 1 classify{notify}", 1, "http"))
        repeated = opts.repeat > 1
        for k in range(1, opts.repeat + 1):
            progress.prefix = f"round {k}/{opts.repeat}: " if repeated else ""
            ceiling: CaseResult | None = None
            if opts.ceiling:
                ceiling = run_ceiling(server.url, texts, opts.batch, progress, redis_pid, opts.ceiling_factor)
                ceiling.round = k
                add(ceiling)
            for case, replicas, entry in flood:
                r = run_pipeline(cfg(replicas), texts, case=case, entry=entry, progress=progress,
                                 profile_label=round_label(case, k) if repeated else None)  # fmt: skip
                r.round = k
                if ceiling is not None and ceiling.alerts_per_s:
                    r.ratio_to_ceiling = r.alerts_per_s / ceiling.alerts_per_s
                add(r)
        progress.prefix = ""
        if opts.rate:
            steady = make_texts(max(1, int(opts.rate * opts.duration)), seed=23)
            result = run_pipeline(
                cfg(1), steady, case=f"steady {opts.rate:g}/s x {opts.duration:g}s{notify}", rate=opts.rate,
                progress=progress,
            )  # fmt: skip
            result.round = None
            add(result)
    machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_avg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    return BenchReport(options=asdict(opts), cases=cases, machine=machine, summary=summarize(cases))


def round_label(case: str, round_no: int) -> str:
    """A case's name in one round of a repeated run: ``"stream, 1 classify #2"``."""
    return f"{case} #{round_no}"


# ------------------------------------------------------------------------------------------ output

COLUMNS = (
    "case", "alerts", "alerts/s", "p50 ms", "p95 ms", "p99 ms", "CPU s ingest/classify/notify/redis",
    "peak RSS MB ingest/classify/notify", "Redis MB used/peak", "x ceiling",
)  # fmt: skip


def _yes_no(flag: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[flag]


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{digits}f}"


def case_label(report: BenchReport, c: CaseResult) -> str:
    """The case's name, with its round when the run was repeated (``"stream, 1 classify #2"``)."""
    if int(report.options.get("repeat", 1)) > 1 and c.round is not None:
        return round_label(c.case, c.round)
    return c.case


def rows(report: BenchReport) -> list[list[str]]:
    out = []
    for c in report.cases:
        s = c.services
        cpu = "/".join([*(_fmt(s[n].cpu_s, 1) if n in s else "-" for n in SERVICES), _fmt(c.redis_cpu_s, 1)])
        rss = "/".join(_fmt(s[n].peak_rss_mb) if n in s else "-" for n in SERVICES)
        out.append(
            [
                case_label(report, c),
                str(c.alerts),
                _fmt(c.alerts_per_s),
                _fmt(c.p50_ms),
                _fmt(c.p95_ms),
                _fmt(c.p99_ms),
                cpu,
                rss,
                f"{c.redis_used_mb:.0f}/{c.redis_peak_mb:.0f}",
                _fmt(c.ratio_to_ceiling, 2),
            ]
        )
    return out


def render_table(report: BenchReport) -> str:
    """The figures as a plain-text table (also what the smoke test reads)."""
    table = [list(COLUMNS), *rows(report)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = []
    for j, r in enumerate(table):
        lines.append("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def native_warnings(report: BenchReport) -> list[str]:
    """A warning per service that ran its pure-Python modules in some case: no compiled build matched
    its current source (never built, or a file of it changed since), so the figures understate it."""
    out = []
    for service, attr in (("classify", "classify_native"), ("notify", "notify_native")):
        cases = [c.case for c in report.cases if getattr(c, attr) is False]
        if cases:
            out.append(
                f"warning: {service} ran its pure-Python modules ({len(cases)} case(s)): no compiled build "
                "matches its current source, so these figures understate it. Run `make native` (what "
                "`make bench` does first) and measure again."
            )
    return out


def summary_lines(report: BenchReport) -> list[str]:
    """One line per case over the rounds of a repeated run (none for a single round)."""
    repeat = int(report.options.get("repeat", 1))
    if repeat <= 1:
        return []
    out = ["", f"over {repeat} rounds (each ratio to its own round's ceiling):"]
    for name, sm in report.summary.items():
        a = sm.alerts_per_s
        rate = f"alerts/s median {_fmt(a.median)} (min {_fmt(a.min)}, max {_fmt(a.max)})" if a else "alerts/s -"
        r = sm.ratio_to_ceiling
        if r is None:
            out.append(f"{name}: {rate} over {sm.rounds} rounds")
            continue
        out.append(
            f"{name}: ratio median {r.median:.3f} (min {r.min:.3f}, max {r.max:.3f}), {sm.rounds_at_target}/"
            f"{sm.rounds} rounds >= {sm.target_ratio:.2f}; {rate}"
        )
    return out


def to_json(report: BenchReport) -> str:
    return json.dumps(asdict(report), indent=2, default=str)


def bench_command(
    alerts: Annotated[int, typer.Option("--alerts", "-n", help="Alerts per throughput case.")] = 20_000,
    subscriptions: Annotated[int, typer.Option(help="Subscriptions besides the catch-all.")] = 10_000,
    batch: Annotated[int, typer.Option(help="Alerts per published batch / HTTP request.")] = 500,
    http: Annotated[bool, typer.Option("--http/--no-http", help="Also enter through the HTTP batch API.")] = True,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Run the flood cases that enter by ingest's stream.")
    ] = True,
    ceiling: Annotated[bool, typer.Option("--ceiling/--no-ceiling", help="Measure the plain-Redis ceiling.")] = True,
    flood: Annotated[bool, typer.Option("--flood/--no-flood", help="Run the as-fast-as-possible cases.")] = True,
    rate: Annotated[float, typer.Option(help="Steady-load case: alerts per second (0 = skip it).")] = 1000.0,
    duration: Annotated[float, typer.Option(help="Steady-load case: seconds.")] = 30.0,
    classify_replicas: Annotated[
        str, typer.Option("--classify-replicas", help="Replica counts for the stream case, e.g. 1,2,3.")
    ] = "1",
    notify_replicas: Annotated[
        int, typer.Option("--notify-replicas", min=1, help="notify processes (one consumer group) in every case.")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="Service log level (INFO: their default when deployed).")] = "INFO",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
    profile: Annotated[
        Path | None, typer.Option("--profile", help="Sample every service with py-spy; raw stacks go here.")
    ] = None,
    retention: Annotated[
        int,
        typer.Option(
            help="VIGIL_RETENTION_MAX_LEN of the services (entries per stream, lag-aware). Smaller than a "
            "run, so the Redis memory column shows retention at work (production default: 100000)."
        ),
    ] = 10_000,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            min=1,
            help="Rounds of the flood cases, each the ceiling then every stream/HTTP case (ratios to that "
            "round's ceiling); prints a row per round and median/min/max per case. The steady case runs once.",
        ),
    ] = 1,
    ceiling_factor: Annotated[
        int,
        typer.Option(
            "--ceiling-factor",
            min=1,
            help="The ceiling relays this many times --alerts (the same payloads cycled), so it is measured "
            "over a few seconds like the pipeline cases rather than a ~1 s burst (same median, less spread).",
        ),
    ] = 5,
) -> None:
    """Throughput and latency of ingest -> classify -> notify beside a plain-Redis ceiling."""
    opts = BenchOptions(
        alerts=alerts,
        subscriptions=subscriptions,
        batch=batch,
        http=http,
        stream=stream,
        ceiling=ceiling,
        flood=flood,
        rate=rate or None,
        duration=duration,
        classify_replicas=tuple(int(x) for x in classify_replicas.split(",") if x.strip()),
        notify_replicas=notify_replicas,
        log_level=log_level,
        progress=not quiet,
        profile_dir=profile,
        retention=retention,
        repeat=repeat,
        ceiling_factor=ceiling_factor,
    )
    report = run(opts)
    typer.echo(render_table(report))
    for line in summary_lines(report):
        typer.echo(line)
    for c in report.cases:
        if c.services:
            typer.echo(
                f"{case_label(report, c)}: notifications {c.notifications} "
                f"({c.notifications / max(c.alerts, 1):.1f}/alert), "
                f"catch-all got {c.catch_all_deliveries}/{c.alerts} ({c.catch_all_duplicates} duplicates), "
                f"dead letters {c.deadletters}, max latency {_fmt(c.max_ms)} ms; compiled modules "
                f"(make native): classify {_yes_no(c.classify_native)}, notify {_yes_no(c.notify_native)}"
            )
            typer.echo(
                f"  Redis used MB over the run (0..100%): {c.redis_used_mb_timeline}; at the end streams "
                f"{c.redis_streams_mb:.0f} MB (max len {c.retention_max_len}: {c.stream_lengths}), the rest "
                "notify's TTL-bound state"
            )
            if c.redis_commands:
                per_alert = ", ".join(
                    f"{name} {f.usec / max(c.alerts, 1):.1f} ({f.calls / max(c.alerts, 1):.2f} calls)"
                    for name, f in c.redis_commands.items()
                )
                typer.echo(f"  Redis time per alert by command, µs: {per_alert}")
    for line in native_warnings(report):
        typer.echo(line, err=True)
    if json_out is not None:
        json_out.write_text(to_json(report), encoding="utf-8")
        typer.echo(f"figures written to {json_out}")
