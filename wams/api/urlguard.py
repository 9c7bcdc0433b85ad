"""Webhook URL guard: an application's webhook may only reach public addresses (no SSRF).

`check_webhook_url` resolves the host (every address getaddrinfo gives) and refuses loopback,
private, link-local, multicast, reserved, unspecified, shared (CGNAT 100.64/10) and cloud metadata
addresses, also when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4, Teredo), unless the admin's
allow-list (WAMS_WEBHOOK_ALLOW: host names and CIDR networks) names the host or the network.
Metadata addresses are refused whatever the allow-list says. Delivery connects to the address the
check returned (`CheckedUrl.address`), so a DNS answer that changes between check and connect
cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 500
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(ValueError):
    """A webhook URL that must not be called, with the reason."""


class UnresolvedHost(UnsafeUrl):
    """A webhook host that does not resolve now (refused when subscribing, retried when delivering)."""


@dataclass(frozen=True)
class CheckedUrl:
    """A webhook URL that passed the guard, with the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str  # the checked IP the connection must use
    target: str  # path and query sent in the request line


def _embedded_ipv4(ip: IpAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo client), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def unsafe_reason(ip: IpAddress) -> str | None:
    """Return why an address is not a public unicast address a webhook may reach, or None."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = unsafe_reason(inner)
        return f"{reason} (inside {ip})" if reason else None
    if ip in METADATA_ADDRESSES:
        return f"{ip}, a cloud metadata address"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE, "shared (carrier-grade NAT)"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),
    )
    for bad, what in checks:
        if bad:
            return f"{ip}, a {what} address"
    return None


def _allow_list(entries: Sequence[str]) -> tuple[set[str], list[IpNetwork]]:
    """Split the allow-list into host names and networks."""
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            hosts.add(text.rstrip("."))
    return hosts, networks


def _resolve(host: str, port: int) -> list[IpAddress]:
    """Return every address of a host (a literal address resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHost(f"the host {host} cannot be resolved ({exc})") from None
    addresses: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnresolvedHost(f"the host {host} has no address")
    return addresses


def parse_webhook_url(url: object) -> tuple[str, str, int, str]:
    """Return scheme, host, port and request target of a well-formed http(s) URL, or raise UnsafeUrl."""
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("webhook_url is required")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UnsafeUrl("webhook_url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeUrl("webhook_url must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("webhook_url must not carry credentials (user:password@)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("webhook_url has an invalid port") from None
    if port == 0:
        raise UnsafeUrl("webhook_url has an invalid port")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname.lower().rstrip("."), port, target


def check_webhook_url(url: object, allow: Sequence[str] | None = None) -> CheckedUrl:
    """Return the URL with the address to connect to, or raise UnsafeUrl saying why it may not be called."""
    scheme, host, port, target = parse_webhook_url(url)
    assert isinstance(url, str)
    allowed_hosts, allowed_networks = _allow_list(settings.WAMS_WEBHOOK_ALLOW if allow is None else allow)
    addresses = _resolve(host, port)
    host_allowed = host in allowed_hosts
    for ip in addresses:
        if ip in METADATA_ADDRESSES or _embedded_ipv4(ip) in METADATA_ADDRESSES:
            raise UnsafeUrl(f"webhook_url {host} resolves to {ip}, a cloud metadata address")
        if host_allowed or any(ip.version == net.version and ip in net for net in allowed_networks):
            continue
        reason = unsafe_reason(ip)
        if reason is not None:
            raise UnsafeUrl(f"webhook_url {host} resolves to {reason}; only public addresses are called")
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]), target=target)
