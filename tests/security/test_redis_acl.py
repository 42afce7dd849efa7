"""Least-privilege Redis (deploy/redis/render_acl.py) against a real Redis started with the rendered ACL.

The services run as real processes, each with its own user's REDIS_URL, and an alert crosses the
pipeline; Redis's ACL LOG must then hold no refusal for them (every command their code sends is
allowed). Then each user is shown NOPERM for what it must not do.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import redis as redis_sync
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from vigil_shared import streams
from vigil_shared.auth import hash_key, new_key
from vigil_shared.demo import drained, service_process, wait_ready
from vigil_shared.embedded_redis import EmbeddedRedis, free_port
from vigil_shared.envelope import encode_event, fields_to_text
from vigil_shared.events import DeadLetter

ROOT = Path(__file__).resolve().parents[2]
USERS = ("ingest", "classify", "notify", "capfeed", "console", "admin")


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_acl", ROOT / "deploy" / "redis" / "render_acl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_acl"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """{user: REDIS_URL} of a private Redis started with the rendered ACL file."""
    workdir = tmp_path_factory.mktemp("acl-redis")
    passwords = {u: secrets.token_urlsafe(24) for u in USERS}
    env = {f"VIGIL_REDIS_PASSWORD_{u.upper()}": p for u, p in passwords.items()}
    text = _render_module().render(env, secrets_dir=workdir / "none", require_all=True)
    for p in passwords.values():
        assert p not in text  # only hashes are rendered
    # a test-only superuser, to read Redis's ACL LOG (not part of the rendered file)
    root_password = secrets.token_urlsafe(24)
    root = f"user testroot on #{hashlib.sha256(root_password.encode()).hexdigest()} ~* &* +@all\n"
    acl = workdir / "users.acl"
    acl.write_text(text + root)
    server = EmbeddedRedis(workdir=workdir, acl_file=acl).start()
    try:
        yield {u: f"redis://{u}:{p}@127.0.0.1:{server.port}/0" for u, p in passwords.items()} | {
            "_anonymous": server.url,
            "_root": f"redis://testroot:{root_password}@127.0.0.1:{server.port}/0",
        }
    finally:
        server.cleanup()


def _client(url: str) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(url)


def test_default_user_is_disabled(acl_redis: dict[str, str]) -> None:
    anonymous = _client(acl_redis["_anonymous"])
    with pytest.raises((AuthenticationError, ResponseError)):
        anonymous.ping()
    with pytest.raises((AuthenticationError, ResponseError)):
        anonymous.execute_command("AUTH", "default", "")


def test_rendering_requires_passwords_and_length(tmp_path: Path) -> None:
    render = _render_module().render
    with pytest.raises(SystemExit, match="no Redis password"):
        render({}, secrets_dir=tmp_path, require_all=True)
    with pytest.raises(SystemExit, match="shorter"):
        render({"VIGIL_REDIS_PASSWORD_INGEST": "short"}, secrets_dir=tmp_path)
    (tmp_path / "vigil_redis_password_notify").write_text("from-a-secret-file-123456\n")
    assert "user notify on #" in render({}, secrets_dir=tmp_path)


@pytest.mark.e2e
def test_services_run_under_their_own_users(acl_redis: dict[str, str], tmp_path: Path) -> None:
    admin = _client(acl_redis["admin"])
    root = _client(acl_redis["_root"])
    root.execute_command("ACL", "LOG", "RESET")
    ingest_key = new_key()
    admin_key = new_key()  # the operator's key for the console (and, forwarded, notify's API)
    subs = tmp_path / "subscriptions.yaml"
    subs.write_text((ROOT / "examples" / "subscriptions.yaml").read_text())
    base = {
        **os.environ,
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_HTTP_HOST": "127.0.0.1",
        "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs),
        "VIGIL_RETENTION_INTERVAL_S": "1",  # the lag-aware trimmer runs under each user too
        "VIGIL_CLAIM_INTERVAL_S": "0.5",  # and the claim loop (XAUTOCLAIM, idle-consumer script)
        "VIGIL_AUTH_DISABLED": "false",
        "VIGIL_API_KEYS": f"embassy-feed:ingest:{hash_key(ingest_key).hex()},ops:admin:{hash_key(admin_key).hex()}",
    }
    with ExitStack() as stack:
        ports = {}
        procs = {}
        for name in ("ingest", "classify", "notify", "capfeed", "console"):
            ports[name] = free_port()
            env = {**base, "REDIS_URL": acl_redis[name], "VIGIL_HTTP_PORT": str(ports[name])}
            if name == "console":  # read-only on the streams: no retention trimmer (as in compose)
                env |= {
                    "VIGIL_RETENTION_INTERVAL_S": "0",
                    "VIGIL_CONSOLE_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
                }
            procs[name] = stack.enter_context(service_process(name, env, tmp_path))
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc, name, tmp_path)
        ingest = f"http://127.0.0.1:{ports['ingest']}/v1/alerts"
        alert = json.loads((ROOT / "examples" / "alerts" / "01-moscow.json").read_text())
        assert httpx.post(ingest, json=alert, timeout=10).status_code == 401
        r = httpx.post(ingest, json=alert, headers={"Authorization": f"Bearer {ingest_key}"}, timeout=10)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                drained(admin, streams.ALERTS_RECEIVED, streams.GROUP_CLASSIFY)
                and drained(admin, streams.ALERTS_CLASSIFIED, streams.GROUP_NOTIFY)
                and admin.xlen(streams.NOTIFICATIONS) > 0
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the pipeline did not drain under the ACL users")
        time.sleep(2.5)  # a retention pass and claim passes under every user
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died: {(tmp_path / f'{name}.log').read_text()[-2000:]}"
        lines = [json.loads(x) for x in (tmp_path / "notifications.jsonl").read_text().splitlines()]
        assert any(x["alert_id"] == r.json()["alert_id"] for x in lines)
        _console_under_its_user(f"http://127.0.0.1:{ports['console']}", admin_key, root, admin)
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died: {(tmp_path / f'{name}.log').read_text()[-2000:]}"
    refused = [
        {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
        for entry in root.execute_command("ACL", "LOG", "128")
    ]
    assert refused == [], f"commands the services needed were refused: {refused}"
    assert admin.xlen(streams.DEADLETTER) == 0


def _console_under_its_user(url: str, key: str, root: redis_sync.Redis, admin: redis_sync.Redis) -> None:
    """Everything the console does, as the ``console`` user: lists, journeys, health (feed states found
    with SCAN), subscriptions through notify's API, and a dead-letter replay (XADD + XDEL)."""
    headers = {"Authorization": f"Bearer {key}"}
    root.set("vigil:feeds:embassy-rss:state", json.dumps({"name": "embassy-rss", "url": "https://e.example/rss"}))
    alerts = httpx.get(f"{url}/console/api/alerts", headers=headers, timeout=10)
    assert alerts.status_code == 200, alerts.text
    [row, *_] = alerts.json()["alerts"]
    detail = httpx.get(f"{url}/console/api/alerts/{row['entry_id']}", headers=headers, timeout=10)
    assert detail.status_code == 200, detail.text
    health = httpx.get(f"{url}/console/api/health", headers=headers, timeout=10)
    assert health.status_code == 200, health.text
    assert [f["name"] for f in health.json()["feeds"]] == ["embassy-rss"]
    subs = httpx.get(f"{url}/console/api/subscriptions", headers=headers, timeout=10)
    assert subs.status_code == 200, subs.text
    # a dead letter of classify's (the received alert's own entry), replayed from the console
    [(entry_id, fields)] = admin.xrange(streams.ALERTS_RECEIVED, count=1)
    record = DeadLetter(correlation_id="acl-replay", producer="classify", stream=streams.ALERTS_RECEIVED,
                        group=streams.GROUP_CLASSIFY, service="classify", entry_id=entry_id.decode(),
                        fields=fields_to_text(fields), error="test", attempts=5)  # fmt: skip
    dead_id = root.xadd(streams.DEADLETTER, asyncio.run(encode_event(record))).decode()  # type: ignore[arg-type]
    listed = httpx.get(f"{url}/console/api/deadletters", headers=headers, timeout=10)
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["dead_letters"]] == [dead_id]
    before = admin.xlen(streams.ALERTS_RECEIVED)
    replay = httpx.post(f"{url}/console/api/deadletters/{dead_id}/replay", headers=headers, timeout=10)
    assert replay.status_code == 200, replay.text
    assert admin.xlen(streams.ALERTS_RECEIVED) == before + 1
    assert admin.xlen(streams.DEADLETTER) == 0


@pytest.mark.parametrize(
    ("user", "command"),
    [
        ("classify", ("XADD", streams.ALERTS_RECEIVED, "*", "f", "v")),  # fake "received" alerts
        ("classify", ("HGETALL", "vigil:subscriptions")),  # read who travels where
        ("classify", ("GET", "vigil:notify:idem:x")),
        ("ingest", ("XADD", streams.ALERTS_CLASSIFIED, "*", "f", "v")),  # skip classification
        ("ingest", ("XREADGROUP", "GROUP", "notify", "c", "COUNT", "1", "STREAMS", streams.ALERTS_CLASSIFIED, ">")),
        ("ingest", ("HGETALL", "vigil:subscriptions")),
        ("notify", ("XADD", streams.ALERTS_RECEIVED, "*", "f", "v")),
        ("notify", ("SET", "vigil:dedup:x", "1")),
        ("capfeed", ("HGETALL", "vigil:subscriptions")),
        ("capfeed", ("XADD", streams.ALERTS_CLASSIFIED, "*", "f", "v")),
        ("notify", ("FLUSHALL",)),
        ("notify", ("CONFIG", "SET", "dir", "/tmp")),
        ("notify", ("KEYS", "*")),
        ("ingest", ("SCAN", "0")),
        # the console reads; it replays dead letters (XADD to a consumed stream + XDEL) and nothing else
        ("console", ("HGETALL", "vigil:subscriptions")),
        ("console", ("GET", "vigil:notify:idem:x")),
        ("console", ("SET", "vigil:feeds:x:state", "{}")),
        ("console", ("SET", "vigil:dedup:x", "1")),
        ("console", ("XADD", streams.NOTIFICATIONS, "*", "f", "v")),
        ("console", ("XADD", streams.DEADLETTER, "*", "f", "v")),
        ("console", ("XDEL", streams.ALERTS_RECEIVED, "1-0")),
        ("console", ("XTRIM", streams.ALERTS_CLASSIFIED, "MAXLEN", "0")),
        ("console", ("XGROUP", "CREATE", streams.ALERTS_CLASSIFIED, "spy", "0", "MKSTREAM")),
        ("console", ("XREADGROUP", "GROUP", "notify", "c", "COUNT", "1", "STREAMS", streams.ALERTS_CLASSIFIED, ">")),
        ("console", ("DEL", streams.DEADLETTER)),
        ("console", ("KEYS", "*")),
        ("console", ("FLUSHALL",)),
        ("console", ("EVAL", "return redis.call('HGETALL', 'vigil:subscriptions')", "0")),
        ("console", ("EVAL", "return redis.call('XADD', KEYS[1], '*', 'f', 'v')", "1", streams.NOTIFICATIONS)),
        ("admin", ("FLUSHALL",)),
        ("admin", ("CONFIG", "GET", "*")),
        # Lua cannot be used to escape: each redis.call is checked against the user's rights
        ("classify", ("EVAL", "return redis.call('XADD', KEYS[1], '*', 'f', 'v')", "1", streams.ALERTS_RECEIVED)),
        ("classify", ("EVAL", "return redis.call('HGETALL', 'vigil:subscriptions')", "0")),
    ],
)
def test_users_are_refused_what_they_must_not_do(
    acl_redis: dict[str, str], user: str, command: tuple[str, ...]
) -> None:
    client = _client(acl_redis[user])
    with pytest.raises((NoPermissionError, ResponseError), match=r"NOPERM|permission|can.t (access|run)"):
        client.execute_command(*command)


def test_allowed_basics_per_user(acl_redis: dict[str, str]) -> None:
    _client(acl_redis["classify"]).xgroup_create(streams.ALERTS_RECEIVED, "classify-2", id="0", mkstream=True)
    _client(acl_redis["ingest"]).xadd(streams.ALERTS_RECEIVED, {"f": "v"})
    _client(acl_redis["notify"]).hset("vigil:subscriptions", "s", "{}")
    _client(acl_redis["ingest"]).set("vigil:dedup:x", "1")
    console = _client(acl_redis["console"])
    assert console.xrevrange(streams.ALERTS_RECEIVED, count=1)
    assert console.get("vigil:feeds:none:state") is None
    admin = _client(acl_redis["admin"])
    assert admin.xlen(streams.ALERTS_RECEIVED) >= 1
    assert admin.hgetall("vigil:subscriptions")


@pytest.mark.parametrize("user", ["ingest", "classify", "notify", "capfeed"])
def test_retention_trims_under_each_service_user(
    acl_redis: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path of the lag-aware trimmer (vigil_shared.retention: its lease, the script deciding
    alone, the guess of the floor's side, the head read when a group lags) runs under each service's
    user."""
    from redis.asyncio import Redis
    from vigil_shared import retention

    root = _client(acl_redis["_root"])
    stream = f"vigil.test.retention.{user}"
    ids = [root.xadd(stream, {"n": str(i)}) for i in range(60)]
    root.xgroup_create(stream, "g", id=ids[55])  # XINFO knows no lag: the floor's side is guessed
    root.execute_command("ACL", "LOG", "RESET")

    async def trim(max_len: int) -> retention.TrimResult:
        client = Redis.from_url(acl_redis[user])
        try:
            return await retention.trim_stream(client, stream, max_len=max_len, max_age_s=3600)
        finally:
            await client.aclose()

    assert _client(acl_redis[user]).set(retention.LEASE_KEY, user, nx=True, px=50) in (True, None)
    assert asyncio.run(trim(40)).trimmed == 20  # the script alone (the 5 entries from the floor on)
    monkeypatch.setattr(retention, "LAG_SCAN_LIMIT", 1)
    root.xgroup_setid(stream, "g", ids[45])
    r = asyncio.run(trim(5))  # the head read: the group holds the stream back
    assert (r.trimmed, r.held_back_by) == (25, "g")
    assert root.execute_command("ACL", "LOG") == []


def test_fenced_transaction_commit_runs_under_the_classify_user(acl_redis: dict[str, str]) -> None:
    """The commit's transaction form (a batch of large outputs: vigil_shared.worker) with one entry
    claimed away meanwhile: under classify's own user the fenced entry's outputs are deleted again
    (XDEL), the others published and acknowledged, and Redis's ACL LOG refuses nothing."""
    from redis.asyncio import Redis
    from vigil_shared.worker import commit_encoded

    root = _client(acl_redis["_root"])
    group = "acl-commit"
    root.xgroup_create(streams.ALERTS_RECEIVED, group, id="$", mkstream=True)
    for i in range(4):
        root.xadd(streams.ALERTS_RECEIVED, {"n": str(i)})
    before = root.xlen(streams.ALERTS_CLASSIFIED) if root.exists(streams.ALERTS_CLASSIFIED) else 0
    root.execute_command("ACL", "LOG", "RESET")

    async def run() -> set[bytes]:
        client = Redis.from_url(acl_redis["classify"])
        try:
            read = await client.xreadgroup(group, "c1", {streams.ALERTS_RECEIVED: ">"}, count=10)
            ids = [eid for eid, _ in read[0][1]]
            await client.xclaim(streams.ALERTS_RECEIVED, group, "c2", min_idle_time=0, message_ids=ids[:1])
            outputs = [(eid, [(streams.ALERTS_CLASSIFIED, b"x" * 3000)]) for eid in ids]  # 12 KB: the transaction
            return await commit_encoded(client, streams.ALERTS_RECEIVED, group, "c1", outputs)
        finally:
            await client.aclose()

    committed = asyncio.run(run())
    assert len(committed) == 3
    assert root.xlen(streams.ALERTS_CLASSIFIED) == before + 3  # the fenced entry's output deleted again
    assert root.xpending(streams.ALERTS_RECEIVED, group)["pending"] == 1  # the claimer's, still pending
    assert root.execute_command("ACL", "LOG") == []
