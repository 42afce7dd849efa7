"""SSRF guard (vigil_shared.netguard): refused ranges, allowlist, connect-time check, redirects, caps."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest
from vigil_shared import netguard
from vigil_shared.netguard import (
    BlockedDestination,
    OutboundPolicy,
    ResponseTooLarge,
    TooManyRedirects,
    blocked_reason,
    guarded_client,
    safe_get,
    safe_post,
)

from .httpserver import local_http_server

LOOPBACK_ONLY = OutboundPolicy.parse("127.0.0.1")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "224.0.0.1",
        "239.1.1.1",
        "0.0.0.0",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fd00:ec2::254",
        "fc00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(BlockedDestination):
        OutboundPolicy().check_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["1.1.1.1", "93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_allowlist_parsing() -> None:
    policy = OutboundPolicy.parse("127.0.0.1, 10.0.0.0/8 hooks.internal *.corp.example")
    policy.check_ip(ipaddress.ip_address("127.0.0.1"))
    policy.check_ip(ipaddress.ip_address("10.9.9.9"))
    policy.check_ip(ipaddress.ip_address("192.168.0.1"), host="hooks.internal")
    policy.check_ip(ipaddress.ip_address("192.168.0.1"), host="a.corp.example")
    with pytest.raises(BlockedDestination):
        policy.check_ip(ipaddress.ip_address("192.168.0.1"), host="corp.example.evil")
    with pytest.raises(BlockedDestination):
        policy.check_ip(ipaddress.ip_address("169.254.169.254"))


def test_allowlist_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    netguard.default_policy().check_ip(ipaddress.ip_address("127.0.0.5"))
    from vigil_shared.settings import VigilSettings

    assert VigilSettings().outbound_allowlist == "127.0.0.0/8"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://foo.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::1]:6379/",
        "http://2130706433/",
        "http://0x7f000001/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_PING",
        "ftp://example.org/",
    ],
)
async def test_check_url_refuses(url: str) -> None:
    with pytest.raises((BlockedDestination, httpx.ConnectError)):
        await OutboundPolicy().check_url(url)


async def test_guarded_client_refuses_loopback_and_allowlist_opens_it() -> None:
    with local_http_server() as (base, server):
        async with guarded_client(OutboundPolicy()) as client:
            with pytest.raises(httpx.ConnectError, match="refused: loopback"):
                await client.get(base + "/")
        assert server.requests == []  # the request never reached the server
        async with guarded_client(LOOPBACK_ONLY) as client:
            assert (await client.get(base + "/")).text == "ok"


async def test_connect_time_check_defeats_dns_rebinding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves to a public address for the pre-check, then to 127.0.0.1: the connection
    is refused, because the guarded transport checks the address it actually connects to."""
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        if host == "rebind.test":
            ip = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return await real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    with local_http_server() as (base, server):
        port = base.rsplit(":", 1)[1]
        url = f"http://rebind.test:{port}/"
        await netguard.check_url(url, OutboundPolicy())  # first answer: public, passes
        async with guarded_client(OutboundPolicy()) as client:
            with pytest.raises(httpx.ConnectError, match=r"rebind\.test -> 127\.0\.0\.1"):
                await client.get(url)
        assert server.requests == []


async def test_guarded_transport_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        if host == "feeds.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    with local_http_server() as (base, _server):
        port = base.rsplit(":", 1)[1]
        async with guarded_client(OutboundPolicy.parse("feeds.test")) as client:
            assert (await client.get(f"http://feeds.test:{port}/")).text == "ok"


async def test_redirect_to_metadata_is_refused() -> None:
    with local_http_server() as (base, server):
        target = base + "/redirect?to=http://169.254.169.254/latest/meta-data/"
        async with guarded_client(LOOPBACK_ONLY) as client:
            with pytest.raises(BlockedDestination, match="metadata"):
                await safe_get(client, target, policy=LOOPBACK_ONLY)
            # httpx following redirects by itself: the guarded transport refuses the hop too
            with pytest.raises(httpx.ConnectError, match="refused"):
                await client.get(target, follow_redirects=True)
        # and a redirect back to loopback when only the first host is allowlisted by name
        assert all(p.startswith("/redirect") for _, p, _ in server.requests)


async def test_redirects_are_bounded() -> None:
    with local_http_server() as (base, _):
        async with guarded_client(LOOPBACK_ONLY) as client:
            with pytest.raises(TooManyRedirects):
                await safe_get(client, base + "/loop", policy=LOOPBACK_ONLY, max_redirects=3)
            ok = await safe_get(client, base + "/redirect?to=/x", policy=LOOPBACK_ONLY)
            assert ok.status_code == 200
            assert ok.history == (base + "/redirect?to=/x",)


async def test_post_does_not_follow_redirects_by_default() -> None:
    with local_http_server() as (base, server):
        async with guarded_client(LOOPBACK_ONLY) as client:
            resp = await safe_post(client, base + "/redirect?to=/elsewhere", policy=LOOPBACK_ONLY, content=b"{}")
        assert resp.status_code == 302
        assert [p for _, p, _ in server.requests] == ["/redirect?to=/elsewhere"]


async def test_response_size_is_capped_while_streaming() -> None:
    with local_http_server() as (base, _):
        async with guarded_client(LOOPBACK_ONLY) as client:
            with pytest.raises(ResponseTooLarge):
                await safe_get(client, base + "/big", policy=LOOPBACK_ONLY, max_bytes=100_000)


async def test_total_time_is_capped() -> None:
    with local_http_server() as (base, _):
        async with guarded_client(LOOPBACK_ONLY) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await safe_get(client, base + "/slow", policy=LOOPBACK_ONLY, timeout_s=1.0)
            assert loop.time() - started < 3


def test_sync_host_check() -> None:
    with pytest.raises(BlockedDestination):
        netguard.check_host_sync("127.0.0.1", policy=OutboundPolicy())
    with pytest.raises(BlockedDestination):
        netguard.check_host_sync("localhost", policy=OutboundPolicy())
    netguard.check_host_sync("127.0.0.1", policy=LOOPBACK_ONLY)
