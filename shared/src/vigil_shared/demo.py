"""``vigil demo``: the whole pipeline on one machine, no Redis or Docker needed.

Starts a private Redis (unless ``REDIS_URL`` is set), runs ingest, classify and notify as three OS
processes (as compose would), posts the sample alerts to ingest's HTTP API, waits until notify has
handled them, prints who was notified of what and why, and stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync

from vigil_shared import streams
from vigil_shared.embedded_redis import EmbeddedRedis, free_port


class DemoError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(msg, flush=True)


@contextmanager
def service_process(
    name: str,
    env: dict[str, str],
    workdir: Path,
    log_name: str | None = None,
    *,
    prefix: Sequence[str] = (),
    stop_timeout_s: float = 15.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``vigil run NAME`` as a child process logging to ``workdir/<log_name or name>.log``; SIGTERM on exit
    (killed if it has not stopped ``stop_timeout_s`` later). ``prefix``: a command it runs under (a
    profiler such as ``valgrind --tool=callgrind``)."""
    log = (workdir / f"{log_name or name}.log").open("wb")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "vigil_shared.cli", "run", name], env=env, cwd=workdir, stdout=log, stderr=log
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, workdir: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (workdir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise DemoError(f"{name} exited with {proc.returncode} during start-up:\n{tail}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{name} not ready after {timeout:.0f}s; see {workdir / (name + '.log')}")


def drained(client: redis_sync.Redis, stream: str, group: str) -> bool:
    try:
        groups = {g["name"].decode(): g for g in client.xinfo_groups(stream)}
    except redis_sync.ResponseError:
        return False
    g = groups.get(group)
    if not g:
        return False
    return int(g["pending"]) == 0 and int(g.get("lag") or 0) == 0


def pipeline_drained(client: redis_sync.Redis) -> bool:
    """Classify and notify have read and acknowledged everything on their input streams."""
    return drained(client, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY) and drained(
        client, streams.ALERTS_CLASSIFIED, streams.GROUP_NOTIFY
    )


def render(line: dict[str, Any]) -> str:
    places = ", ".join(str(p) for p in line.get("places", [])) or "-"
    threats = ", ".join(str(t) for t in line.get("threat_types", [])) or "-"
    kind = "" if line.get("kind") in (None, "new") else f" [{str(line['kind']).upper()}]"
    return (
        f"  -> {line.get('subscription_id')}{kind}: {line.get('severity', '?').upper()} {threats} | {places}\n"
        f"     {line.get('title', '')}\n"
        f"     why: {line.get('reason', '')}"
    )


def run_demo(examples: Path, timeout: float = 90.0) -> int:
    alerts = sorted((examples / "alerts").glob("*.json"))
    subs = examples / "subscriptions.yaml"
    if not alerts or not subs.exists():
        raise DemoError(f"no sample alerts or subscriptions under {examples} (run from the repository root)")
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL")
        if not url:
            say("starting a private Redis server ...")
            url = stack.enter_context(EmbeddedRedis()).url
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-demo-")))
        ports = {name: free_port() for name in ("ingest", "classify", "notify")}
        # the demo uses a real API key, generated for this run (only its hash is configured)
        from vigil_shared.auth import ApiKey, Role, hash_key, new_key

        api_key = new_key()
        base_env = {
            **os.environ, "REDIS_URL": url, "VIGIL_LOG_FORMAT": "json", "VIGIL_LOG_LEVEL": "INFO",
            "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs.resolve()), "PYTHONUNBUFFERED": "1",
            "VIGIL_API_KEYS": ApiKey("demo", Role.INGEST, hash_key(api_key)).line(),
        }
        procs = {}
        for name in ("ingest", "classify", "notify"):
            say(f"starting {name} (port {ports[name]}) ...")
            env = {**base_env, "VIGIL_HTTP_PORT": str(ports[name]), "VIGIL_HTTP_HOST": "127.0.0.1"}
            procs[name] = stack.enter_context(service_process(name, env, workdir))
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc, name, workdir)
        say("all three services are ready\n")

        ingest = f"http://127.0.0.1:{ports['ingest']}/v1/alerts"
        for path in alerts:
            body = json.loads(path.read_text(encoding="utf-8"))
            r = httpx.post(ingest, json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
            if r.status_code != 202:
                raise DemoError(f"ingest refused {path.name}: {r.status_code} {r.text}")
            say(f"sent {path.name}: {body.get('title', '')!r} -> {r.json()['alert_id']} ({r.json()['status']})")

        say("\nwaiting for classify and notify ...")
        client = redis_sync.Redis.from_url(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pipeline_drained(client):
                break
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise DemoError(f"{name} died; see its log:\n" + (workdir / f"{name}.log").read_text()[-3000:])
            time.sleep(0.3)
        else:
            raise DemoError("the pipeline did not drain in time; `vigil status` shows where it is stuck")

        out = workdir / "notifications.jsonl"
        lines = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
        by_alert: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            by_alert.setdefault(line.get("title", "?"), []).append(line)
        dead = int(client.xlen(streams.DEADLETTER)) if client.exists(streams.DEADLETTER) else 0
        say(f"\n{len(lines)} notifications delivered ({dead} dead letters):\n")
        for title, group in by_alert.items():
            say(f"* {title}")
            for line in group:
                say(render(line))
            say("")
        moscow = [x for x in lines if any("Moscow" in str(p) for p in x.get("places", [])) and x.get("threat_types")]
        if not moscow:
            say("demo FAILED: no notification named Moscow with a threat type")
            return 1
        say("demo OK: the Moscow alert reached its subscribers with place and threat type")
        return 0
