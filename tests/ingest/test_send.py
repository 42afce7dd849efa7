"""``vigil send FILE|-`` with typer's CliRunner: direct to Redis, and through a real ingest HTTP server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
import uvicorn
from redis.asyncio import Redis
from typer.testing import CliRunner
from vigil_ingest.api import build_router
from vigil_ingest.cli import register
from vigil_ingest.settings import IngestSettings
from vigil_shared.events import AlertReceived
from vigil_shared.health import build_http_app

ReadStreamSync = Callable[[str], list[AlertReceived]]
FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
TEXT = "Curfew in the old town tonight\nA curfew applies from 22:00 to 06:00 in the old town. Stay indoors.\n"
JSON_ALERT = {
    "title": "Strike at the international airport",
    "text": "<p>Ground staff strike on Friday; expect cancellations.</p>",
    "url": "https://alerts.example.test/airport-strike",
    "issuer": "Example Consulate",
    "ticket": "OPS-1234",
}


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test host for ingest's commands."""

    register(app)
    return app


@pytest.fixture
def run(cli: typer.Typer, redis_url: str) -> Callable[..., object]:
    runner = CliRunner()

    def invoke(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None) -> object:
        return runner.invoke(cli, ["send", *args], input=input, env={"REDIS_URL": redis_url, **(env or {})})

    return invoke


def test_text_from_stdin_direct_then_duplicate(
    run: Callable[..., object], redis_url: str, stream_alerts_sync: ReadStreamSync
) -> None:
    result = run("-", "--direct", input=TEXT)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stdout.startswith("new ")  # type: ignore[attr-defined]
    assert "Curfew in the old town tonight" in result.stdout  # type: ignore[attr-defined]
    assert "1 alert from stdin (text): 1 new" in result.stderr  # type: ignore[attr-defined]
    again = run("-", "--direct", input=TEXT)
    assert again.exit_code == 0  # type: ignore[attr-defined]
    assert again.stdout.startswith("duplicate ")  # type: ignore[attr-defined]
    [event] = stream_alerts_sync(redis_url)
    assert event.source_kind == "text"
    assert event.source_name == "cli"
    assert event.alert_id in result.stdout  # type: ignore[attr-defined]


def test_json_file_direct_keeps_extra_fields(
    run: Callable[..., object], redis_url: str, stream_alerts_sync: ReadStreamSync, tmp_path: Path
) -> None:
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(JSON_ALERT))
    result = run(str(path), "--direct", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert out["kind"] == "json"
    assert [r["status"] for r in out["results"]] == ["new"]
    [event] = stream_alerts_sync(redis_url)
    assert event.alert_id == out["results"][0]["alert_id"]
    assert event.extra["ticket"] == "OPS-1234"
    assert event.text == "Ground staff strike on Friday; expect cancellations."


def test_rss_and_cap_files_direct(
    run: Callable[..., object], redis_url: str, stream_alerts_sync: ReadStreamSync
) -> None:
    rss = run(str(FEEDS / "embassy-alerts.rss.xml"), "--direct", "--json")
    assert rss.exit_code == 0, rss.output  # type: ignore[attr-defined]
    assert json.loads(rss.stdout)["kind"] == "rss"  # type: ignore[attr-defined]
    assert [r["status"] for r in json.loads(rss.stdout)["results"]] == ["new"] * 3  # type: ignore[attr-defined]
    cap = run(str(FEEDS / "cap-earthquake.xml"), "--direct")
    assert cap.exit_code == 0, cap.output  # type: ignore[attr-defined]
    update = run(str(FEEDS / "cap-earthquake-update.xml"), "--direct")
    assert update.exit_code == 0, update.output  # type: ignore[attr-defined]
    assert update.stdout.startswith("revision ")  # type: ignore[attr-defined]
    assert " rev 2 " in update.stdout  # type: ignore[attr-defined]
    events = stream_alerts_sync(redis_url)
    assert [e.source_kind for e in events] == ["rss", "rss", "rss", "cap", "cap"]
    assert events[3].cap is not None
    assert events[3].cap.identifier == "example.test-2024-0206-0417"
    assert events[4].revision_of == events[3].alert_id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((FEEDS / "billion-laughs.xml").read_bytes(), "refused XML: it contains a document type declaration (DTD)"),
        (b'{"title": "x", "text": ', "malformed JSON"),
        (b'{"title": "no text"}', "invalid alert: text: Field required"),
        (b"   \n", "input is empty"),
        (b"<?xml version='1.0'?><invoice/>", "is not RSS, Atom or CAP 1.2"),
        (b"garbage \x80\x81", "input is not text"),
    ],
    ids=["billion-laughs", "malformed-json", "missing-text", "empty", "unknown-xml", "binary"],
)
@pytest.mark.parametrize("mode", ["direct", "http"])
def test_bad_input_is_refused_with_exit_1_and_nothing_sent(
    run: Callable[..., object],
    redis_url: str,
    stream_alerts_sync: ReadStreamSync,
    tmp_path: Path,
    content: bytes,
    message: str,
    mode: str,
) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    # HTTP mode against a port nobody listens on: bad input is refused before any request
    args = ["--direct"] if mode == "direct" else ["--url", "http://127.0.0.1:9"]
    started = time.monotonic()
    result = run(str(path), *args)
    assert time.monotonic() - started < 5
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert result.stderr.startswith(f"error: {path}: ")  # type: ignore[attr-defined]
    assert message in result.stderr  # type: ignore[attr-defined]
    assert stream_alerts_sync(redis_url) == []


def test_missing_file_and_unreachable_targets(run: Callable[..., object], tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.txt"), "--direct")
    assert missing.exit_code == 1  # type: ignore[attr-defined]
    assert "no such file" in missing.stderr  # type: ignore[attr-defined]
    no_api = run("-", "--url", "http://127.0.0.1:9", input=TEXT)
    assert no_api.exit_code == 2  # type: ignore[attr-defined]
    assert "cannot reach ingest at http://127.0.0.1:9" in no_api.stderr  # type: ignore[attr-defined]
    no_redis = run("-", "--direct", input=TEXT, env={"REDIS_URL": "redis://127.0.0.1:9/0"})
    assert no_redis.exit_code == 2  # type: ignore[attr-defined]
    assert "cannot publish to Redis" in no_redis.stderr  # type: ignore[attr-defined]


# ---------------------------------------------------------------- through a real HTTP server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(redis_url: str, settings: IngestSettings) -> Iterator[str]:
    redis = Redis.from_url(redis_url)
    app = build_http_app(
        title="ingest", routers=[build_router(redis, settings)], redis=redis, workers=[], background=[]
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "ingest test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def ingest_url(redis_url: str) -> Iterator[str]:
    with _serve(redis_url, IngestSettings(max_body_bytes=100_000)) as url:
        yield url


def test_send_with_an_api_key(
    run: Callable[..., object], redis_url: str, stream_alerts_sync: ReadStreamSync, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "vigil_test-key-for-the-cli-0123456789"
    monkeypatch.setenv("VIGIL_AUTH_DISABLED", "false")
    monkeypatch.setenv("VIGIL_API_KEYS", f"ops-desk:ingest:{hashlib.sha256(key.encode()).hexdigest()}")
    with _serve(redis_url, IngestSettings()) as url:
        refused = run("-", "--url", url, input=TEXT)
        assert refused.exit_code == 2  # type: ignore[attr-defined]
        assert "ingest refused the request (401)" in refused.stderr  # type: ignore[attr-defined]
        assert "--api-key or VIGIL_API_KEY" in refused.stderr  # type: ignore[attr-defined]
        sent = run("-", "--url", url, input=TEXT, env={"VIGIL_API_KEY": key})
        assert sent.exit_code == 0, sent.output  # type: ignore[attr-defined]
    [event] = stream_alerts_sync(redis_url)
    assert event.source_name == "ops-desk"


def test_send_through_the_http_api(
    run: Callable[..., object], ingest_url: str, redis_url: str, stream_alerts_sync: ReadStreamSync, tmp_path: Path
) -> None:
    env = {"VIGIL_INGEST_URL": ingest_url}
    text = run("-", input=TEXT, env=env)
    assert text.exit_code == 0, text.output  # type: ignore[attr-defined]
    assert text.stdout.startswith("new ")  # type: ignore[attr-defined]
    rss = run(str(FEEDS / "embassy-alerts.rss.xml"), env=env)
    assert rss.exit_code == 0, rss.output  # type: ignore[attr-defined]
    assert rss.stdout.count("new ") == 3  # type: ignore[attr-defined]
    cap = run(str(FEEDS / "cap-earthquake.xml"), "--url", ingest_url)
    assert cap.exit_code == 0, cap.output  # type: ignore[attr-defined]
    json_path = tmp_path / "a.json"
    json_path.write_text(json.dumps([JSON_ALERT, JSON_ALERT]))
    batch = run(str(json_path), env=env)
    assert batch.exit_code == 0, batch.output  # type: ignore[attr-defined]
    assert [line.split()[0] for line in batch.stdout.splitlines()] == ["new", "duplicate"]  # type: ignore[attr-defined]
    again = run(str(FEEDS / "embassy-alerts.rss.xml"), env=env)
    assert again.stdout.count("duplicate ") == 3  # type: ignore[attr-defined]
    events = stream_alerts_sync(redis_url)
    assert [e.source_kind for e in events] == ["text", "rss", "rss", "rss", "cap", "api"]
    # the server's limit applies to what the CLI sends: 413 is a bad-input exit
    big = tmp_path / "big.txt"
    big.write_text("Big alert\n" + "word " * 30_000)
    refused = run(str(big), env=env)
    assert refused.exit_code == 1  # type: ignore[attr-defined]
    assert "ingest refused the input (413)" in refused.stderr  # type: ignore[attr-defined]
