"""Refuse connections from user-supplied endpoints to addresses inside our network.

Why at connect time: checking the URL once and letting the SDK resolve the
name again later is bypassed by DNS rebinding (the name answers a public
address to the check and 127.0.0.1 to the connection). So the guard is
installed in the botocore client's connection pools: every new socket resolves
the name once, checks each address (`addresses.check_address`), and connects
only to an address it has just approved (then checks the peer address again).
Nothing but an approved address ever sees a SYN.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable
from typing import Any

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

from delivery.s3.addresses import AllowList, EndpointNotAllowedError, check_address, parse_address


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
            check_address(parse_address(str(sockaddr[0])), host=host, allow_list=allow_list)
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
        # urllib3 types these errors' `conn` as its HTTPConnection; this mixin is only ever
        # mixed into botocore's subclasses of it, hence the ignores below.
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]  # see above
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            message = f"Failed to establish a new connection: {exc}"
            raise NewConnectionError(self, message) from exc  # type: ignore[arg-type]  # see above


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
