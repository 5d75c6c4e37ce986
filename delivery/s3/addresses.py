"""Which network addresses a user-supplied S3 endpoint may reach: the SSRF policy.

Why this exists: a user types the S3 endpoint, and the service connects to it
with its own network position, so an endpoint must never reach inside our
network. Anything that is not a globally routable unicast address is refused
(`is_global` alone lets multicast through and `is_private` misses CGNAT
100.64.0.0/10, where a cloud metadata service lives at 100.100.100.200), unless
the operator's allow-list names the host or a network containing the address.
`ipaddress` is not trusted alone: Python 3.11 calls parts of 192.0.0.0/24 global
(192.0.0.8 passed), so the IANA special-purpose registries are listed here
explicitly and checked first; `not is_global` stays as a second net.

The policy is applied at connect time (`network_guard`) and, with more
checks on the URL's spelling, when a destination is saved (`endpoint_check`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from errors import DeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")

_PRIVATE = "a private-network address"
_DOCUMENTATION = "a documentation address"
_AS112 = "an AS112 DNS sink address"
# IANA IPv4 and IPv6 Special-Purpose Address Registries (plus multicast), checked before
# `ipaddress`'s own properties, which differ between Python releases. The embedded-IPv4
# forms (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) are judged by the address inside them.
SPECIAL_PURPOSE: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in [
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", "a shared (CGNAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
        ("192.0.2.0/24", _DOCUMENTATION),
        ("192.31.196.0/24", _AS112),
        ("192.52.193.0/24", "an AMT relay address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay anycast address"),
        ("192.168.0.0/16", _PRIVATE),
        ("192.175.48.0/24", _AS112),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", _DOCUMENTATION),
        ("203.0.113.0/24", _DOCUMENTATION),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("100:0:0:1::/64", "a dummy-prefix address"),
        ("2001::/23", "an IETF protocol assignment (2001::/23, Teredo included)"),
        ("2001:db8::/32", _DOCUMENTATION),
        ("2620:4f:8000::/48", _AS112),
        ("3fff::/20", _DOCUMENTATION),
        ("5f00::/16", "an SRv6 segment identifier"),
        ("fc00::/7", "a unique-local (private-network) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    ]
)
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


class EndpointNotAllowedError(DeliveryError):
    """The endpoint points inside the service's own network; retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class AllowList:
    """The operator's exceptions: host names (and their subdomains) and networks.

    Why names match subdomains too: with virtual-host addressing the SDK
    connects to `<bucket>.<endpoint host>`, so allowing `minio.internal` must
    allow `backups.minio.internal`.
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] | AllowList | None) -> AllowList:
        """Build from entries such as `127.0.0.0/8`, `::1`, `minio.internal`.

        Raise `ValueError` naming the first entry that is neither a network nor a host name.
        """
        if entries is None:
            return cls()
        if isinstance(entries, AllowList):
            return entries
        if isinstance(entries, str):
            entries = [part for part in entries.replace(",", " ").split() if part]
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().strip("[]").lower()
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            label_chars = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
            if not entry or set(entry) - label_chars or ".." in entry or entry.startswith("-"):
                raise ValueError(
                    f"Endpoint allow-list entry {raw!r} is neither a network (10.0.0.0/8, ::1) "
                    "nor a host name (minio.internal); fix the setting."
                )
            hosts.add(entry.strip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """True if the operator trusts this host name whatever it resolves to."""
        name = host.strip("[]").rstrip(".").lower()
        return any(name == h or name.endswith("." + h) for h in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """True if an allow-listed network contains the address (or the IPv4 inside it)."""
        candidates = [address, *filter(None, [_embedded_ipv4(address)])]
        return any(a in net for a in candidates for net in self.networks if a.version == net.version)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address really reaches (mapped, NAT64, 6to4), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def why_not_public(address: IPAddress) -> str | None:
    """Name the reason an address is off limits, or None if it is public unicast."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        reason = why_not_public(inner)
        return f"{reason} (inside {address})" if reason else None
    if address in _METADATA:
        return "a cloud metadata service address"
    for network, reason in SPECIAL_PURPOSE:
        if address.version == network.version and address in network:
            return reason
    if address.version == 6 and address not in _GLOBAL_UNICAST_V6:
        return "outside the IPv6 global unicast range (2000::/3)"
    checks = [
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.version == 4 and address in _CGNAT, "a shared (CGNAT) address"),
        (address.is_private, "a private-network address"),
        (getattr(address, "is_site_local", False), "a site-local address"),
        (not address.is_global, "not a public address"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def parse_address(text: str) -> IPAddress:
    """Parse an address as sockets report it (IPv6 may carry a `%scope`)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def check_address(address: IPAddress, *, host: str, allow_list: AllowList) -> None:
    """Raise `EndpointNotAllowedError` unless the address is public or allow-listed."""
    if allow_list.allows_host(host) or allow_list.allows_address(address):
        return
    reason = why_not_public(address)
    if reason is None:
        return
    shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
    raise EndpointNotAllowedError(
        f"Refusing to connect to {shown}: it is {reason}. Lifeboat only delivers to "
        "publicly reachable endpoints; use your store's public endpoint URL "
        "(an operator can allow-list a store on a private network)."
    )


def check_endpoint_url(url: str, allow_list: AllowList) -> None:
    """Check what can be checked without the network: scheme, credentials in the URL, IP literals.

    Why up front: a typed `http://169.254.169.254` should be refused when the
    settings are saved, with a clear message, not after a retry loop.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EndpointNotAllowedError(f"The endpoint URL must start with https:// (or http://), not {parts.scheme!r}.")
    if parts.username or parts.password:
        raise EndpointNotAllowedError(
            "The endpoint URL must not contain a user name or password; "
            "enter the keys in the access key fields instead."
        )
    host = parts.hostname
    if not host:
        raise EndpointNotAllowedError("The endpoint URL has no host name; enter e.g. https://s3.example.com.")
    try:
        address = parse_address(host)
    except ValueError:
        return
    check_address(address, host=host, allow_list=allow_list)
