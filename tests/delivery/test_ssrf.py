"""The endpoint guard: user-supplied endpoints never reach addresses inside our network.

Every test here records socket connects, and a safety net refuses any connect
to a non-loopback address without sending a packet, so a broken guard fails
the test instead of sending traffic off this machine.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.s3 import S3Delivery, S3Settings
from delivery.s3.addresses import AllowList, EndpointNotAllowedError, check_endpoint_url, why_not_public
from delivery.s3.errors import _chain
from delivery.s3.network_guard import guarded_create_connection, install_guard
from delivery.s3.settings import Timeouts
from errors import DeliveryError
from tests.profiles import examples
from tests.servers.s3 import MotoS3

KEYS: dict[str, Any] = {  # S3Settings fields
    "access_key_id": "AKIATESTKEY000000001",
    "secret_access_key": "test-secret-never-logged-123",
}
QUICK = Timeouts(connect=0.5, read=2, max_attempts=1)
PUBLIC = "93.184.215.14"  # global unicast; the safety net below makes sure it is never dialled


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket tried to connect to; non-loopback ones are blocked, not sent."""
    real = socket.socket.connect
    seen: list[Any] = []

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        host = address[0] if isinstance(address, tuple) else str(address)
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise OSError(errno.ENETUNREACH, "test safety net: non-loopback connect blocked")
        real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]], repeat_last: bool = True) -> None:
    """Make `socket.getaddrinfo` answer the given names with successive addresses."""
    real = socket.getaddrinfo
    calls: dict[str, int] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        n = calls[host] = calls.get(host, -1) + 1
        address = answers[host][min(n, len(answers[host]) - 1)]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def s3(endpoint: str, allow_list: Any = None, bucket: str = "some-bucket") -> S3Delivery:
    settings = S3Settings(bucket=bucket, endpoint_url=endpoint, path_style=True, **KEYS)
    return S3Delivery(settings, allow_list=allow_list, timeouts=QUICK)


def refused_by_test_connection(target: S3Delivery) -> EndpointNotAllowedError:
    with target, pytest.raises(DeliveryError) as caught:
        target.test_connection()
    assert isinstance(caught.value, EndpointNotAllowedError)
    assert caught.value.permanent is True
    return caught.value


def refused_at_connect(target: S3Delivery) -> EndpointNotAllowedError:
    """Call botocore directly, skipping Lifeboat's early check: only the connect guard is left."""
    with target, pytest.raises(Exception) as caught:
        target.client.list_objects_v2(Bucket=target.settings.bucket)
    refusal = next((e for e in _chain(caught.value) if isinstance(e, EndpointNotAllowedError)), None)
    assert refusal is not None, f"not refused by the guard: {caught.value!r}"
    return refusal


# -- the address policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.20", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.1.1", "CGNAT"),
        ("fd00:ec2::254", "metadata"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 spelling of 169.254.169.254
        ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
        ("240.0.0.1", "reserved"),
        ("192.0.0.8", "IETF protocol assignment"),  # Python 3.11 calls it global
        ("::ffff:192.0.0.8", "IETF protocol assignment"),
        ("198.18.0.1", "benchmarking"),
        ("2001:db8::1", "documentation"),
        ("64:ff9b:1::a00:1", "NAT64"),
        ("::127.0.0.1", "global unicast range"),
    ],
)
def test_it_refuses_every_kind_of_internal_address(address: str, reason: str) -> None:
    why = why_not_public(ipaddress.ip_address(address))
    assert why is not None and reason.lower() in why.lower()


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"])
def test_it_allows_public_unicast_addresses(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


@settings(max_examples=examples(200), deadline=None)
@given(st.ip_addresses())
def test_it_only_ever_allows_global_unicast(address: Any) -> None:
    if why_not_public(address) is None:
        assert address.is_global and not address.is_multicast and not address.is_loopback


def test_it_reads_the_operator_allow_list() -> None:
    allow = AllowList.parse("127.0.0.0/8, ::1 minio.internal")
    assert allow.allows_address(ipaddress.ip_address("127.0.0.9"))
    assert allow.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("10.0.0.1"))
    assert allow.allows_host("minio.internal") and allow.allows_host("backups.minio.internal")
    assert not allow.allows_host("minio.internal.evil.example")
    with pytest.raises(ValueError, match="allow-list entry"):
        AllowList.parse(["http://minio.internal"])


def test_it_refuses_endpoint_urls_with_other_schemes_or_credentials() -> None:
    with pytest.raises(EndpointNotAllowedError, match="https://"):
        check_endpoint_url("file:///etc/passwd", AllowList())
    with pytest.raises(EndpointNotAllowedError, match="user name or password"):
        check_endpoint_url("https://me:pw@s3.example.com", AllowList())


def test_it_refuses_to_run_unguarded_if_botocore_changes_shape() -> None:
    with pytest.raises(RuntimeError, match="cannot install the endpoint guard"):
        install_guard(object(), AllowList())


# -- endpoints as typed by a user ----------------------------------------------------------------


@pytest.mark.server
def test_it_refuses_a_loopback_endpoint_unless_allow_listed(
    moto_server: MotoS3, s3_bucket: str, connects: list[Any]
) -> None:
    refusal = refused_by_test_connection(s3(moto_server.url, bucket=s3_bucket))
    assert "loopback" in refusal.user_message and connects == []
    with s3(moto_server.url, ["127.0.0.0/8"], bucket=s3_bucket) as allowed:
        assert allowed.test_connection().startswith("Wrote, read back and deleted")
    assert connects and all(address[0] == "127.0.0.1" for address in connects)


@pytest.mark.server
def test_it_refuses_a_host_name_that_resolves_to_loopback(moto_server: MotoS3, connects: list[Any]) -> None:
    refused_by_test_connection(s3(f"http://localhost:{moto_server.port}"))
    refused_at_connect(s3(f"http://localhost:{moto_server.port}"))
    assert connects == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254",
        "http://100.100.100.200",
        "http://[fd00:ec2::254]",
        "http://10.0.0.1:9000",
        "https://[::ffff:127.0.0.1]:9000",
        "http://0.0.0.0:9000",
    ],
)
def test_it_refuses_internal_ip_endpoints_before_any_connection(endpoint: str, connects: list[Any]) -> None:
    refused_by_test_connection(s3(endpoint))
    assert connects == []


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "100.100.100.200", "fd00:ec2::254", "10.0.0.1", "127.0.0.1", "224.0.0.1"],
)
def test_it_refuses_at_connect_time_whatever_the_name_resolves_to(
    address: str, connects: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver(monkeypatch, {"s3.attacker.example": [address]})
    refusal = refused_at_connect(s3("https://s3.attacker.example"))
    assert address in refusal.user_message
    assert connects == []


def test_it_defeats_dns_rebinding_by_checking_the_address_it_connects_to(
    connects: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first lookup (Lifeboat's early check) sees a public address; every later one 127.0.0.1.
    resolver(monkeypatch, {"rebind.attacker.example": [PUBLIC, "127.0.0.1"]})
    refusal = refused_by_test_connection(s3("http://rebind.attacker.example:9000"))
    assert "127.0.0.1" in refusal.user_message
    assert connects == []  # neither the public nor the loopback address was dialled


@pytest.mark.server
def test_it_checks_the_peer_address_again_after_connecting(
    moto_server: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket.socket, "getpeername", lambda self: ("10.1.2.3", moto_server.port))
    with pytest.raises(EndpointNotAllowedError, match=r"10\.1\.2\.3"):
        guarded_create_connection(
            ("127.0.0.1", moto_server.port),
            1.0,
            host="127.0.0.1",
            allow_list=AllowList.parse(["127.0.0.0/8"]),
        )


@pytest.mark.server
def test_it_lets_an_allow_listed_host_name_through(moto_server: MotoS3, connects: list[Any]) -> None:
    sock = guarded_create_connection(
        ("localhost", moto_server.port),
        1.0,
        host="localhost",
        allow_list=AllowList.parse(["localhost"]),
    )
    sock.close()
    assert connects and ipaddress.ip_address(connects[-1][0]).is_loopback
