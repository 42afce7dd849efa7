from __future__ import annotations

import json
import time

import pytest
from vigil_notify.channels import PermanentFailure, TemporaryFailure, default_registry
from vigil_notify.channels.apprise_channel import AppriseChannel, classify_apprise_failure
from vigil_notify.channels.base import Message
from vigil_notify.channels.jsonl import JsonlChannel
from vigil_notify.channels.webhook import (
    InvalidSignature,
    WebhookChannel,
    sign,
    split_webhook_url,
    verify_signature,
)
from vigil_notify.subscriptions import mask_url

MSG = Message(
    title="[Severe] Threats in Moscow",
    text="plain body",
    markdown="**md body**",
    html="<p>html body</p>",
    payload={"alert_id": "a1", "revision": 1, "subscription_id": "s1", "kind": "new", "reason": "matched: x"},
    idempotency_key="k1",
)


def test_signature_roundtrip_tamper_and_replay_window() -> None:
    body = b'{"a": 1}'
    header = sign(body, "topsecret", timestamp=1_000_000)
    assert verify_signature(body, header, "topsecret", now=1_000_100) == 1_000_000
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify_signature(b'{"a": 2}', header, "topsecret", now=1_000_100)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify_signature(body, header, "wrong", now=1_000_100)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify_signature(body, header, "topsecret", tolerance_s=300, now=1_000_301)
    with pytest.raises(InvalidSignature, match="missing"):
        verify_signature(body, None, "topsecret")
    # rotation: any v1 may match
    rotated = header + ",v1=" + "0" * 64
    assert verify_signature(body, rotated, "topsecret", now=1_000_000)


def test_webhook_url_secret_from_query_or_userinfo() -> None:
    assert split_webhook_url("webhook+https://h.example/p?secret=abc&x=1") == (
        "https://h.example/p?x=1",
        "abc",
    )
    assert split_webhook_url("webhook+http://:k3y@h.example:8080/p") == ("http://h.example:8080/p", "k3y")
    with pytest.raises(ValueError, match="secret"):
        split_webhook_url("webhook+https://h.example/p")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("webhook+https://hooks.example/p?secret=abc123XYZ", "abc123XYZ"),
        ("mailtos://alerts:Pa55w0rd@mail.example.com?to=ops@example.com", "Pa55w0rd"),
        ("slack://T1234ABCD/B5678EFGH/xoxbTOKENvalue123/#alerts", "xoxbTOKENvalue123"),
        (
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        ),
        ("discord://112233445566/ZYXwvuTSRqpoNMLkjiHGFedcBA", "ZYXwvuTSRqpoNMLkjiHGFedcBA"),
        ("ntfy://user:hunter2@ntfy.example/topic", "hunter2"),
        ("webhook+https://:s3cr3tUserinfo@hooks.example/p", "s3cr3tUserinfo"),
    ],
)
def test_mask_url_hides_secrets(url: str, secret: str) -> None:
    masked = mask_url(url)
    assert secret not in masked
    assert masked.split("://")[0] == url.split("://")[0]


def test_registry_picks_by_scheme(tmp_path) -> None:
    reg = default_registry()
    assert isinstance(reg.create(f"jsonl://{tmp_path}/x.jsonl"), JsonlChannel)
    assert isinstance(reg.create("webhook+https://h.example/p?secret=x"), WebhookChannel)
    assert isinstance(reg.create("mailto://u:p@example.com?to=a@example.com"), AppriseChannel)
    assert reg.check("nosuch://what") is not None
    assert reg.check("webhook+https://h.example/p") is not None  # no secret


async def test_jsonl_appends_one_object_per_send(tmp_path) -> None:
    path = tmp_path / "out" / "d.jsonl"
    ch = JsonlChannel(f"jsonl://{path}")
    await ch.send(MSG)
    await ch.send(MSG)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    row = json.loads(lines[0])
    assert row["alert_id"] == "a1"
    assert row["reason"] == "matched: x"
    assert row["rendered_text"] == "plain body"


def test_jsonl_send_many_in_order_reopens_after_rotation_and_reports_failures(tmp_path) -> None:
    import dataclasses
    import os

    path = tmp_path / "out" / "d.jsonl"
    ch = JsonlChannel(f"jsonl://{path}")
    msgs = [dataclasses.replace(MSG, payload={**MSG.payload, "n": i}) for i in range(3)]
    assert ch.send_many(msgs) == [None, None, None]
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [0, 1, 2]
    os.rename(path, tmp_path / "out" / "d.jsonl.1")  # rotated between two batches: the new file
    assert ch.send_many(msgs[:1]) == [None]
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [0]
    assert len((tmp_path / "out" / "d.jsonl.1").read_text().splitlines()) == 3
    # a failing write fails its message, as send() would raise
    blocked = tmp_path / "file"
    blocked.write_text("")
    bad = JsonlChannel(f"jsonl://{blocked}/x.jsonl")
    errors = bad.send_many(msgs[:2])
    assert all(isinstance(e, TemporaryFailure) for e in errors)
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro.jsonl"
        ro.write_text("")
        ro.chmod(0o444)
        assert all(isinstance(e, PermanentFailure) for e in JsonlChannel(f"jsonl://{ro}").send_many(msgs[:2]))
    ch._close()


async def test_webhook_signed_and_verified_by_receiver(receiver_factory) -> None:
    rx = receiver_factory()
    ch = WebhookChannel(rx.webhook_url(), timeout_s=5)
    await ch.send(MSG)
    await ch.aclose()
    assert rx.bad_signatures == 0
    assert rx.received[0]["alert_id"] == "a1"
    assert rx.headers[0]["X-Vigil-Idempotency-Key"] == "k1"


async def test_webhook_wrong_secret_is_permanent(receiver_factory) -> None:
    rx = receiver_factory()
    ch = WebhookChannel(f"webhook+{rx.url}/hook?secret=not-the-right-one", timeout_s=5)
    with pytest.raises(PermanentFailure, match="401"):
        await ch.send(MSG)
    await ch.aclose()
    assert rx.bad_signatures == 1


@pytest.mark.parametrize(("status", "exc"), [(503, TemporaryFailure), (429, TemporaryFailure),
                                             (408, TemporaryFailure), (404, PermanentFailure)])  # fmt: skip
async def test_webhook_status_mapping(receiver_factory, status, exc) -> None:
    rx = receiver_factory(plan=lambda n: status)
    ch = WebhookChannel(rx.webhook_url(), timeout_s=5)
    with pytest.raises(exc, match=str(status)):
        await ch.send(MSG)
    await ch.aclose()


async def test_webhook_connection_refused_is_temporary() -> None:
    from .helpers import free_port

    ch = WebhookChannel(f"webhook+http://127.0.0.1:{free_port()}/x?secret=s", timeout_s=2)
    with pytest.raises(TemporaryFailure):
        await ch.send(MSG)
    await ch.aclose()


async def test_email_through_local_smtp(smtp_server) -> None:
    url = f"mailto://127.0.0.1:{smtp_server.port}?to=traveller@example.com&from=vigil@example.com"
    ch = AppriseChannel(url, timeout_s=10)
    await ch.send(MSG)
    (mail,) = smtp_server.messages
    assert mail["Subject"] == MSG.title
    assert mail["To"] == "traveller@example.com"
    body = mail.get_body(("html", "plain")).get_content()
    assert "html body" in body


async def test_back_to_back_emails_through_one_channel_are_not_paced_by_apprise(smtp_server) -> None:
    # Apprise paces each plugin object to one send per 5.5 s by sleeping inside notify(); a channel
    # object is reused for every delivery to its URL, so the second alert's e-mail slept inside the
    # send's timeout, timed out, was retried and was then sent twice. Pacing is Vigil's (per-subscription
    # throttle and digests; retries with back-off when a service refuses).
    url = f"mailto://127.0.0.1:{smtp_server.port}?to=traveller@example.com&from=vigil@example.com"
    ch = AppriseChannel(url, timeout_s=3)
    started = time.monotonic()
    for _ in range(3):
        await ch.send(MSG)
    assert time.monotonic() - started < 3
    assert len(smtp_server.messages) == 3
    await ch.aclose()


@pytest.mark.parametrize(("reply", "exc"), [("451 4.3.0 try later", TemporaryFailure),
                                            ("550 5.1.1 no such user", PermanentFailure)])  # fmt: skip
async def test_smtp_error_mapping(smtp_server, reply, exc) -> None:
    smtp_server.reject_with = reply
    url = f"mailto://127.0.0.1:{smtp_server.port}?to=traveller@example.com&from=vigil@example.com"
    with pytest.raises(exc, match=reply[:3]):
        await AppriseChannel(url, timeout_s=10).send(MSG)
    assert smtp_server.messages == []


def test_apprise_failure_classification() -> None:
    assert classify_apprise_failure(["Failed to send Slack notification: Bad Request - 400"])[0] is True
    assert classify_apprise_failure(["Failed to send: Service Unavailable - error=503"])[0] is False
    assert classify_apprise_failure(["Authentication failed"])[0] is True
    assert classify_apprise_failure([]) == (False, "send failed (no cause reported)")


async def test_hanging_webhook_times_out(receiver_factory) -> None:
    rx = receiver_factory(hang=True)
    ch = WebhookChannel(rx.webhook_url(), timeout_s=0.5)
    with pytest.raises(TemporaryFailure, match="timed out"):
        await ch.send(MSG)
    await ch.aclose()


def test_jsonl_send_many_one_write_and_a_write_cut_short(tmp_path, monkeypatch) -> None:
    """The batch goes out in one write(2); when the disk fills in the middle, the lines written whole
    are sent, the line cut fails (retried by the deliverer), the rest are written one by one."""
    import dataclasses
    import errno
    import os

    import vigil_notify.channels.jsonl as jsonl_mod

    path = tmp_path / "d.jsonl"
    ch = JsonlChannel(f"jsonl://{path}")
    msgs = [dataclasses.replace(MSG, payload={**MSG.payload, "n": i}) for i in range(4)]
    lines = [(m.json_line() + "\n").encode() for m in msgs]
    real_write = os.write
    calls: list[int] = []

    def one_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(jsonl_mod.os, "write", one_write)
    assert ch.send_many(msgs) == [None] * 4
    assert calls == [sum(map(len, lines))]
    assert path.read_bytes() == b"".join(lines)

    path.unlink()
    plan = iter(["short", "full"])

    def cut_short(fd: int, data: bytes) -> int:
        step = next(plan, "ok")
        if step == "short":  # the first line and half of the second, then the disk is full
            return real_write(fd, data[: len(lines[0]) + len(lines[1]) // 2])
        if step == "full":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jsonl_mod.os, "write", cut_short)
    got = ch.send_many(msgs)
    assert got[0] is None
    assert isinstance(got[1], TemporaryFailure)
    assert got[2:] == [None, None]
    assert path.read_bytes() == lines[0] + lines[1][: len(lines[1]) // 2] + lines[2] + lines[3]

    class Broken(Message):
        def json_line(self) -> str:
            raise ValueError("cannot encode")

    monkeypatch.setattr(jsonl_mod.os, "write", real_write)
    broken = Broken(title="t", text="x", markdown="x", html="x")
    got = ch.send_many([msgs[0], broken, msgs[1]])
    assert got[0] is None
    assert isinstance(got[1], ValueError)
    assert got[2] is None
    ch._close()


async def test_jsonl_send_many_a_line_that_cannot_be_encoded_fails_alone(tmp_path, monkeypatch) -> None:
    """A lone surrogate in one message: send() raises UnicodeEncodeError for it, and send_many
    reports that for it alone, writing the others in one write(2) (and, cut short, as usual)."""
    import dataclasses
    import errno
    import os

    import vigil_notify.channels.jsonl as jsonl_mod

    path = tmp_path / "s.jsonl"
    ch = JsonlChannel(f"jsonl://{path}")
    good = [dataclasses.replace(MSG, payload={**MSG.payload, "n": i}) for i in range(3)]
    bad = dataclasses.replace(MSG, text="lone \ud800 surrogate")
    with pytest.raises(UnicodeEncodeError):
        await ch.send(bad)
    lines = [(m.json_line() + "\n").encode() for m in good]
    real_write = os.write
    calls: list[int] = []

    def one_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(jsonl_mod.os, "write", one_write)
    got = ch.send_many([good[0], bad, good[1], good[2]])
    assert got[0] is None
    assert isinstance(got[1], UnicodeEncodeError)
    assert got[2:] == [None, None]
    assert calls == [sum(map(len, lines))]
    assert path.read_bytes() == b"".join(lines)

    path.unlink()
    plan = iter(["short", "full"])

    def cut_short(fd: int, data: bytes) -> int:
        step = next(plan, "ok")
        if step == "short":  # the first good line whole, then the disk is full
            return real_write(fd, data[: len(lines[0])])
        if step == "full":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jsonl_mod.os, "write", cut_short)
    got = ch.send_many([good[0], bad, good[1], good[2]])
    assert got[0] is None
    assert isinstance(got[1], UnicodeEncodeError)
    assert isinstance(got[2], TemporaryFailure)  # the write failed at its start
    assert got[3] is None
    assert path.read_bytes() == lines[0] + lines[2]
    ch._close()
