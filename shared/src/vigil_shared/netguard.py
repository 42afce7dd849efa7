"""SSRF-safe outbound HTTP: Vigil only calls public addresses unless an operator allowlists more.

Feed URLs, webhook URLs and Apprise URLs are written by people who are not Vigil's operator (a feed
list pasted from elsewhere, a subscriber registering a webhook). Without a guard, any of them can
make Vigil call ``http://169.254.169.254/`` (cloud credentials), ``http://127.0.0.1:6379`` (Redis)
or an admin page inside the network. This module refuses such destinations:

* **What is refused.** Every address that is not globally routable: loopback, RFC 1918 and ULA
  private ranges, link-local (which holds the cloud metadata address 169.254.169.254), CGNAT
  100.64/10, multicast, unspecified/reserved/documentation ranges, IPv4-mapped and NAT64 forms of
  them, plus the metadata names (``metadata.google.internal``, ``fd00:ec2::254``) and ``localhost``.
  A host name is resolved and refused when **any** of its addresses is refused.
* **Allowlist.** ``VIGIL_OUTBOUND_ALLOWLIST`` (comma or space separated): CIDRs or IPs
  (``10.0.0.0/8``, ``127.0.0.1``) allow those addresses; host names (``hooks.internal``, or
  ``*.corp.example`` for subdomains) allow that name whatever it resolves to. Tests allowlist
  ``127.0.0.1`` to reach their local servers.
* **Connect-time check (DNS rebinding).** :func:`guarded_transport` / :func:`guarded_client` put a
  network backend under httpx that resolves the host itself, checks every address, and connects to
  the checked address - so a name that resolves to a public address for a pre-check and to
  127.0.0.1 for the connection cannot slip through. TLS still verifies the certificate against the
  host name. Every redirect hop opens its connections through the same backend, so redirects are
  re-checked too; environment proxies are ignored (``trust_env=False``).
* **Bounded.** :func:`safe_request` (and :func:`safe_get` / :func:`safe_post`) follows redirects by
  hand (at most ``max_redirects``, only to http/https, each hop checked before the request),
  stops reading a response past ``max_bytes`` and gives up after ``timeout_s`` in total.

Use :func:`check_url` to validate a URL that another library will call (Apprise): it resolves and
checks now; the library connects later by itself, so a DNS answer that changes in between is a
residual risk (see SECURITY.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOWLIST_ENV = "VIGIL_OUTBOUND_ALLOWLIST"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT (also Alibaba's metadata 100.100.100.200)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "fc00::/7",  # ULA (fd00:ec2::254 is AWS's IPv6 metadata)
        "fe80::/10",
        "ff00::/8",
    )
)


class BlockedDestination(ValueError):
    """The URL or address is not allowed as an outbound destination (SSRF guard)."""


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a safe outbound destination, or None when it is globally routable."""
    inner = _embedded_v4(ip)
    if inner is not None:
        why = blocked_reason(inner)
        return f"{why} (embedded in {ip})" if why else None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_private or any(ip in n for n in _BLOCKED_NETWORKS if n.version == ip.version):
        return "private or reserved address"
    if ip.is_reserved or not ip.is_global:
        return "non-global address"
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which destinations outbound calls may reach beyond the public internet."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    host_suffixes: tuple[str, ...] = ()
    allowed_schemes: frozenset[str] = field(default_factory=lambda: frozenset({"http", "https"}))

    @classmethod
    def parse(cls, allowlist: str | Iterable[str] | None) -> OutboundPolicy:
        if allowlist is None:
            items: list[str] = []
        elif isinstance(allowlist, str):
            items = allowlist.replace(",", " ").split()
        else:
            items = [i.strip() for i in allowlist if i.strip()]
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = item.lower().rstrip(".")
            if name.startswith("*."):
                suffixes.append(name[1:])
            elif name:
                hosts.add(name)
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes))

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        return cls.parse(getattr(settings, "outbound_allowlist", "") or "")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OutboundPolicy:
        env = os.environ if env is None else env
        return cls.parse(env.get(ALLOWLIST_ENV, ""))

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(s) for s in self.host_suffixes)

    def ip_allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def check_ip(self, ip: IPAddress, host: str | None = None) -> None:
        if self.ip_allowed(ip) or (host is not None and self.host_allowed(host)):
            return
        why = blocked_reason(ip)
        if why:
            shown = f"{host} -> {ip}" if host and host != str(ip) else str(ip)
            raise BlockedDestination(
                f"outbound call to {shown} refused: {why} (allowlist it in {ALLOWLIST_ENV} if intended)"
            )

    def check_host_name(self, host: str) -> None:
        """Refusals that need no DNS: metadata names, localhost."""
        name = host.lower().rstrip(".")
        if self.host_allowed(name):
            return
        if name in METADATA_HOSTS:
            raise BlockedDestination(f"outbound call to {name} refused: cloud metadata host")
        if name == "localhost" or name.endswith(".localhost"):
            raise BlockedDestination(f"outbound call to {name} refused: loopback host")

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` and check every address; returns the addresses (all allowed)."""
        self.check_host_name(host)
        literal = _parse_ip(host)
        if literal is not None:
            self.check_ip(literal, host)
            return [literal]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses: list[IPAddress] = []
        for info in infos:
            ip = _parse_ip(str(info[4][0]))
            if ip is not None and ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address")
        for ip in addresses:  # every address: a mixed answer must not pick the private one later
            self.check_ip(ip, host)
        return addresses

    async def check_url(self, url: str) -> list[IPAddress]:
        """Validate ``url``'s scheme and host (resolving it); raises :class:`BlockedDestination`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BlockedDestination(f"invalid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in self.allowed_schemes:
            raise BlockedDestination(f"outbound URL scheme {scheme or '(none)'!r} is not allowed")
        host = parts.hostname
        if not host:
            raise BlockedDestination("outbound URL has no host")
        return await self.resolve(host, port or (443 if scheme == "https" else 80))


def default_policy() -> OutboundPolicy:
    """The policy from ``VIGIL_OUTBOUND_ALLOWLIST`` (read at call time)."""
    return OutboundPolicy.from_env()


async def check_url(url: str, policy: OutboundPolicy | None = None) -> list[IPAddress]:
    return await (policy or default_policy()).check_url(url)


def check_host_sync(host: str, port: int = 443, policy: OutboundPolicy | None = None) -> None:
    """Blocking variant of the host check for synchronous callers (outside an event loop)."""
    policy = policy or default_policy()
    policy.check_host_name(host)
    literal = _parse_ip(host)
    if literal is not None:
        policy.check_ip(literal, host)
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        ip = _parse_ip(str(info[4][0]))
        if ip is not None:
            policy.check_ip(ip, host)


# ---------------------------------------------------------------- httpx integration


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that connects only to checked addresses (defeats DNS rebinding)."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port)
        except BlockedDestination as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except httpx.ConnectError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls over unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with :class:`GuardedNetworkBackend` under its connection pool.

    A refused destination surfaces as ``httpx.ConnectError`` whose message starts with
    ``outbound call to ... refused``; :func:`is_blocked_error` recognises it.
    """

    def __init__(self, policy: OutboundPolicy | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trust_env", False)
        kwargs.pop("uds", None)
        kwargs.pop("proxy", None)
        super().__init__(**kwargs)
        self.policy = policy or default_policy()
        pool = self._pool
        pool._network_backend = GuardedNetworkBackend(self.policy, pool._network_backend)
        self.backend = pool._network_backend


def is_blocked_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if isinstance(seen, BlockedDestination) or ("outbound" in text and "refused: " in text):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def guarded_transport(policy: OutboundPolicy | None = None, **kwargs: Any) -> GuardedTransport:
    return GuardedTransport(policy, **kwargs)


def guarded_client(policy: OutboundPolicy | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection (redirects included) goes to checked
    addresses only. ``kwargs`` go to the client (timeout, headers, limits, follow_redirects...)."""
    limits = kwargs.pop("limits", None)
    transport_kwargs: dict[str, Any] = {"limits": limits} if limits is not None else {}
    kwargs["trust_env"] = False
    kwargs.pop("transport", None)
    return httpx.AsyncClient(transport=GuardedTransport(policy, **transport_kwargs), **kwargs)


# ---------------------------------------------------------------- bounded requests


class ResponseTooLarge(Exception):
    """The response body exceeded ``max_bytes``; reading stopped."""


class TooManyRedirects(Exception):
    pass


@dataclass(frozen=True)
class SafeResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    history: tuple[str, ...] = ()


_REDIRECTS = (301, 302, 303, 307, 308)


async def safe_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: OutboundPolicy | None = None,
    max_bytes: int = 5_000_000,
    timeout_s: float = 20.0,
    max_redirects: int = 5,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> SafeResponse:
    """One request with every hop checked, redirects followed by hand (bounded), the body capped
    at ``max_bytes`` (read as a stream, stopped when exceeded) and ``timeout_s`` for everything.

    Raises :class:`BlockedDestination`, :class:`ResponseTooLarge`, :class:`TooManyRedirects`,
    ``TimeoutError`` or ``httpx.HTTPError``. Use a :func:`guarded_client` so that the connection
    itself is checked too (DNS rebinding); the pre-checks here give clear errors for any client.
    """
    policy = policy or default_policy()
    history: list[str] = []
    deadline = time.monotonic() + timeout_s
    current, current_method, body = url, method.upper(), content
    async with asyncio.timeout(timeout_s):
        while True:
            await policy.check_url(current)
            remaining = max(0.1, deadline - time.monotonic())
            request = client.build_request(
                current_method, current, headers=dict(headers or {}), content=body, timeout=remaining
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location and max_redirects > 0:
                    if len(history) >= max_redirects:
                        raise TooManyRedirects(f"more than {max_redirects} redirects from {url}")
                    history.append(current)
                    current = str(response.url.join(location))
                    if response.status_code == 303 or (response.status_code in (301, 302) and current_method == "POST"):
                        current_method, body = "GET", None
                    continue
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ResponseTooLarge(f"response of {declared} bytes exceeds the limit of {max_bytes}")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise ResponseTooLarge(f"response exceeds the limit of {max_bytes} bytes")
                return SafeResponse(response.status_code, response.headers, bytes(data), current, tuple(history))
            finally:
                await response.aclose()


async def safe_get(client: httpx.AsyncClient, url: str, **kwargs: Any) -> SafeResponse:
    return await safe_request(client, "GET", url, **kwargs)


async def safe_post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> SafeResponse:
    """POST; by default a redirect is not followed (the 3xx response is returned)."""
    kwargs.setdefault("max_redirects", 0)
    return await safe_request(client, "POST", url, **kwargs)


async def check_foreign_url(url: str, policy: OutboundPolicy | None = None, extra_hosts: Iterable[str] = ()) -> None:
    """Validate the destination of a URL another library (Apprise) will call by itself.

    The URL's host (and ``extra_hosts``, e.g. a plugin's SMTP server) is checked when it is an IP
    literal or a local name, and resolved and checked when it looks like a DNS name. A host part that
    does not resolve is left alone: for many Apprise schemes it is a token (``tgram://bot-token/``)
    and the plugin talks to its fixed public API. The library connects later by itself, so DNS
    rebinding between this check and its connection is a residual risk (SECURITY.md).
    """
    policy = policy or default_policy()
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    for name in {h for h in (host, *extra_hosts) if h}:
        policy.check_host_name(name)
        literal = _parse_ip(name)
        if literal is not None:
            policy.check_ip(literal, name)
            continue
        if "." not in name:
            continue
        try:
            await policy.resolve(name, 0)
        except httpx.ConnectError:  # does not resolve: not a network host, or the plugin fails later
            continue
