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
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
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
