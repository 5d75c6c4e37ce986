"""Refuse connections from user-supplied endpoints to addresses inside our network.

Why at connect time: a user types the S3 endpoint, and the service connects to
it with its own network position. Checking the URL once and letting the SDK
resolve the name again later is bypassed by DNS rebinding (the name answers a
public address to the check and 127.0.0.1 to the connection). So the guard is
installed in the botocore client's connection pools: every new socket resolves
the name once, checks each address, and connects only to an address it has
just approved (then checks the peer address again). Nothing but an approved
address ever sees a SYN.

Policy: anything that is not a globally routable unicast address is refused
(`is_global` alone lets multicast through and `is_private` misses CGNAT
100.64.0.0/10, where a cloud metadata service lives at 100.100.100.200), unless
the operator's allow-list names the host or a network containing the address.
`ipaddress` is not trusted alone: Python 3.11 calls parts of 192.0.0.0/24 global
(192.0.0.8 passed), so the IANA special-purpose registries are listed here
explicitly and checked first; `not is_global` stays as a second net.

When a destination is saved, `check_endpoint_at_save` also refuses what a
browser or resolver would read as an internal host although it does not look
like one: `2130706433`, `0x7f.1`, `017700000001` (inet_aton forms), full-width
digits that IDNA maps to ASCII, `localhost` and `*.localhost`, single-label and
private-use names, metadata host names, ports no browser may fetch, and URLs
with credentials, spaces or backslashes.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

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


# Ports the Fetch standard forbids browsers to use ("bad ports"): other protocols' services.
BAD_PORTS = frozenset(
    int(port)
    for port in """
    0 1 7 9 11 13 15 17 19 20 21 22 23 25 37 42 43 53 69 77 79 87 95 101 102 103 104 109 110 111 113 115
    117 119 123 135 137 139 143 161 179 389 427 465 512 513 514 515 526 530 531 532 540 548 554 556 563
    587 601 636 989 990 993 995 1719 1720 1723 2049 3659 4045 4190 5060 5061 6000 6566 6665 6666 6667
    6668 6669 6679 6697 10080
    """.split()  # noqa: SIM905 (a table, easier to compare with the standard)
)
# Names that only mean something inside a network (RFC 6761, RFC 6762, RFC 8375, ICANN's
# `.internal`, and suffixes commonly used on private networks).
PRIVATE_SUFFIXES = (
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
    "invalid",
    "onion",
    "alt",
    "svc",
)
METADATA_NAMES = frozenset({"metadata", "metadata.goog", "instance-data", "metadata.google.internal"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\\u0080-\u009f\u2028\u2029]")
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}

Resolver = Callable[..., list[tuple[Any, ...]]]


def check_endpoint_at_save(url: str, allow_list: AllowList, *, resolve: Resolver | None = None) -> None:
    """Refuse an endpoint that is, or resolves to, anything but a public host, in one line.

    Why at save time too: the connect-time guard stops the traffic, but a user
    should hear about `http://0x7f.1` when they enter it, not from a failed
    night's export. The name is resolved once here (numeric forms are decoded
    without the network); a name that does not exist is refused as such.
    """
    host, port = _checked_host(url, allow_list)
    if allow_list.allows_host(host):
        return
    lookup = resolve or socket.getaddrinfo
    try:
        infos = lookup(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            raise EndpointNotAllowedError(
                f"The endpoint host {host} does not exist (DNS has no such name); check the endpoint URL."
            ) from None
        raise EndpointNotAllowedError(
            f"The endpoint host {host} could not be looked up ({exc.strerror}); try again when DNS answers."
        ) from None
    if not infos:
        raise EndpointNotAllowedError(f"The endpoint host {host} has no addresses; check the endpoint URL.")
    for *_, sockaddr in infos:
        check_address(parse_address(str(sockaddr[0])), host=host, allow_list=allow_list)


def _checked_host(url: str, allow_list: AllowList) -> tuple[str, int]:
    """Check everything but DNS; return the host (IDNA, lower case, no dot at the end) and port."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise EndpointNotAllowedError("Enter the endpoint as a URL such as https://s3.example.com.")
    # urlsplit silently drops tabs and newlines, and browsers read `\` as `/`: refuse them instead.
    if _URL_FORBIDDEN.search(url):
        raise EndpointNotAllowedError("The endpoint URL must not contain spaces, control characters or backslashes.")
    check_endpoint_url(url, allow_list)
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise EndpointNotAllowedError(
            "The endpoint URL must not contain a user name or password; "
            "enter the keys in the access key fields instead."
        )
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointNotAllowedError("The endpoint URL has an invalid port; use a number from 1 to 65535.") from None
    if port in BAD_PORTS:
        raise EndpointNotAllowedError(
            f"The endpoint port {port} belongs to another protocol; S3 endpoints use 443, 80 or their own port."
        )
    raw_host = parts.hostname or ""
    if parts.netloc.startswith("["):
        if "%" in raw_host:
            raise EndpointNotAllowedError("The endpoint URL must not name an IPv6 zone (%...).")
        return raw_host, port  # an IPv6 literal: check_endpoint_url judged it
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise EndpointNotAllowedError(f"The endpoint host {raw_host!r} is not a valid host name.") from None
    host = host[:-1] if host.endswith(".") else host
    labels = host.split(".")
    if not host or not all(_LABEL.match(label) for label in labels):
        raise EndpointNotAllowedError(f"The endpoint host {raw_host!r} is not a valid host name.")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Resolvers read such names with inet_aton: 2130706433, 0x7f.1 and 0177.0.0.1 are 127.0.0.1.
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise EndpointNotAllowedError(f"The endpoint host {raw_host!r} is not a valid IPv4 address.") from None
        check_address(address, host=host, allow_list=allow_list)
        if str(address) != host:
            raise EndpointNotAllowedError(
                f"Write the endpoint's IPv4 address as four decimal numbers ({address}), not {raw_host!r}."
            )
        return host, port
    if allow_list.allows_host(host):
        return host, port
    if host in METADATA_NAMES or host.startswith("metadata."):
        raise EndpointNotAllowedError(f"Refusing the endpoint {host}: it is a cloud metadata service name.")
    if len(labels) == 1 or any(host == s or host.endswith("." + s) for s in PRIVATE_SUFFIXES):
        raise EndpointNotAllowedError(
            f"Refusing the endpoint {host}: it is a name that only exists inside a private network. "
            "Use your store's public endpoint URL (an operator can allow-list a store on a private network)."
        )
    return host, port


def check_endpoint_resolves(url: str, allow_list: AllowList) -> None:
    """Refuse early if the endpoint's name resolves to an address off limits.

    A convenience for a precise message before any request; the connect-time
    guard is what actually enforces the policy. Resolution failures are left
    for the real request to report.
    """
    check_endpoint_url(url, allow_list)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_list.allows_host(host):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except OSError:
        return
    for *_, sockaddr in infos:
        check_address(parse_address(sockaddr[0]), host=host, allow_list=allow_list)


def guarded_create_connection(
    address: tuple[str, int],
    timeout: Any = _DEFAULT_TIMEOUT,
    *,
    host: str,
    allow_list: AllowList,
    source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """Resolve once, connect only to approved addresses, and check the peer again.

    Mirrors `urllib3.util.connection.create_connection` so timeouts and socket
    options behave the same.
    """
    name, port = address
    name = name.strip("[]")
    infos = socket.getaddrinfo(name, port, allowed_gai_family(), socket.SOCK_STREAM)
    last_error: OSError | None = None
    refusal: EndpointNotAllowedError | None = None
    for family, socktype, proto, _, sockaddr in infos:
        try:
            check_address(parse_address(sockaddr[0]), host=host, allow_list=allow_list)
        except EndpointNotAllowedError as exc:
            refusal = refusal or exc
            continue
        sock = socket.socket(family, socktype, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            check_address(parse_address(sock.getpeername()[0]), host=host, allow_list=allow_list)
            return sock
        except OSError as exc:
            last_error = exc
            sock.close()
        except EndpointNotAllowedError:
            sock.close()
            raise
    if last_error is not None:
        raise last_error
    if refusal is not None:
        raise refusal
    raise OSError(f"getaddrinfo returned no addresses for {name}")


class _GuardMixin:
    """Replace urllib3's `_new_conn` with the guarded connect; keep its error types."""

    lifeboat_allow_list: AllowList = AllowList()
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            return guarded_create_connection(
                (self._dns_host, self.port),
                self.timeout,
                host=self.host,
                allow_list=self.lifeboat_allow_list,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(  # type: ignore[arg-type]
                self, f"Failed to establish a new connection: {exc}"
            ) from exc


class GuardedHTTPConnection(_GuardMixin, AWSHTTPConnection):
    """botocore's HTTP connection with the address guard."""


class GuardedHTTPSConnection(_GuardMixin, AWSHTTPSConnection):
    """botocore's HTTPS connection with the address guard (TLS still verifies the host name)."""


@functools.lru_cache(maxsize=64)
def guarded_pool_classes(allow_list: AllowList) -> dict[str, type]:
    """Connection pool classes bound to one allow-list, for `PoolManager.pool_classes_by_scheme`."""
    http_conn = type("GuardedHTTPConnection", (GuardedHTTPConnection,), {"lifeboat_allow_list": allow_list})
    https_conn = type("GuardedHTTPSConnection", (GuardedHTTPSConnection,), {"lifeboat_allow_list": allow_list})
    return {
        "http": type("GuardedHTTPConnectionPool", (AWSHTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSConnectionPool", (AWSHTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


def install_guard(client: Any, allow_list: AllowList) -> None:
    """Make every connection the botocore `client` opens go through the guard.

    botocore has no public hook for connection classes, so this reaches into
    the client's `URLLib3Session`. If botocore's internals change shape, fail
    closed (raise) rather than send requests unguarded; a test proves the
    guard fires.
    """
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(session, "_pool_classes_by_scheme", None)
    manager = getattr(session, "_manager", None)
    if not isinstance(session, URLLib3Session) or not isinstance(classes, dict) or manager is None:
        raise RuntimeError("cannot install the endpoint guard on this botocore version")
    guarded = guarded_pool_classes(allow_list)
    classes.update(guarded)  # the same dict also feeds any proxy managers
    manager.pool_classes_by_scheme = classes
    manager.clear()
