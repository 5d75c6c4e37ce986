"""Check a user-typed S3 endpoint URL before any request: when it is saved, and before a delivery.

When a destination is saved, `check_endpoint_at_save` refuses what a
browser or resolver would read as an internal host although it does not look
like one: `2130706433`, `0x7f.1`, `017700000001` (inet_aton forms), full-width
digits that IDNA maps to ASCII, `localhost` and `*.localhost`, single-label and
private-use names, metadata host names, ports no browser may fetch, and URLs
with credentials, spaces or backslashes. These checks only give a clear
message early; `network_guard` is what enforces the policy on every connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from urllib3.util.connection import allowed_gai_family

from delivery.s3.addresses import AllowList, EndpointNotAllowedError, check_address, check_endpoint_url, parse_address

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
        check_address(parse_address(str(sockaddr[0])), host=host, allow_list=allow_list)
