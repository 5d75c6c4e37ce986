"""S3 endpoints are checked when a destination is saved, not only at the first delivery.

Every name is answered by a fake resolver and every socket connect is refused
by a safety net, so nothing here sends a packet anywhere, loopback included.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

import config as settings
from account.records import Account
from delivery.s3.addresses import SPECIAL_PURPOSE, AllowList, EndpointNotAllowedError, why_not_public
from delivery.s3.endpoint_check import check_endpoint_at_save
from errors import InvalidInput
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from store import Database, Destination
from store.accounts import replace_account

PUBLIC = "93.184.215.14"
NAMES = {
    "s3.example.com": [PUBLIC],
    "rebind.attacker.example": ["127.0.0.1"],
    "private.attacker.example": ["10.0.0.5"],
    "meta.attacker.example": ["169.254.169.254"],
    "ietf.attacker.example": ["192.0.0.8"],
    "cgnat.attacker.example": ["100.100.100.200"],
    "v6.attacker.example": ["::1"],
    "mapped.attacker.example": ["::ffff:10.0.0.1"],
    "ula.attacker.example": ["fd00:ec2::254"],
    "mixed.attacker.example": [PUBLIC, "127.0.0.1"],
}

TARGETS = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "240.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
]


def _forms(dotted: str) -> list[str]:
    """The same IPv4 address as inet_aton, WHATWG URL parsers and IPv6 embeddings spell it."""
    a, b, c, d = (int(p) for p in dotted.split("."))
    n = int(ipaddress.IPv4Address(dotted))
    fullwidth = dotted.translate({ord(str(i)): chr(0xFF10 + i) for i in range(10)})
    return [
        dotted,
        str(n),
        hex(n),
        "0" + oct(n)[2:],
        ".".join("0" + oct(p)[2:] for p in (a, b, c, d)),
        ".".join(hex(p) for p in (a, b, c, d)),
        f"{a}.{b}.{(c << 8) | d}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"[::ffff:{dotted}]",
        f"[::ffff:{(a << 8) | b:x}:{(c << 8) | d:x}]",
        f"[64:ff9b::{dotted}]",
        f"[2002:{(a << 8) | b:x}:{(c << 8) | d:x}::1]",
        fullwidth,
    ]


HOSTILE = (
    [f"http://{form}" for target in TARGETS for form in _forms(target)]
    + [f"https://{form}:9000" for form in _forms("127.0.0.1")]
    + [
        f"http://[{v6}]"
        for v6 in [
            "::1",
            "::",
            "0:0:0:0:0:0:0:1",
            "::127.0.0.1",
            "fe80::1",
            "fe80::1%25eth0",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::1",
            "fec0::1",
            "3fff::1",
            "5f00::1",
            "::ffff:0:7f00:1",
        ]
    ]
    + [
        f"http://{name}"
        for name in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "localhost:9000",
            "foo.localhost",
            "bucket.s3.localhost",
            "a.b.c.localhost.",
            "minio",
            "minio:9000",
            "metadata",
            "metadata.google.internal",
            "metadata.goog",
            "instance-data",
            "metadata.attacker.example",
            "kubernetes.default.svc",
            "printer.local",
            "nas.lan",
            "router.home.arpa",
            "db.internal",
            "files.corp",
            "1.0.0.127.in-addr.arpa",
            "hidden.onion",
            "s3.invalid",
            "xn--",
            "-bad-.example.com",
            "under_score.example.com",
        ]
    ]
    + [f"https://{name}" for name in NAMES if name != "s3.example.com"]
    + [f"https://{name}:8443" for name in NAMES if name != "s3.example.com"]
    + ["https://no-such-host.example.net", "http://nxdomain.attacker.example:9000"]
    + [f"http://s3.example.com:{port}" for port in [0, 1, 21, 22, 23, 25, 53, 110, 143, 465, 587, 993, 6000, 6667]]
    + ["http://s3.example.com:65536", "http://s3.example.com:99999", "http://s3.example.com:-1"]
    + ["http://s3.example.com:abc", "http://s3.example.com:0x50"]
    + [
        "http://user:pass@s3.example.com",
        "http://user@s3.example.com",
        "http://@s3.example.com",
        "http://:@s3.example.com",
        "http://s3.example.com@127.0.0.1",
        "http://127.0.0.1@s3.example.com",
        "http://s3.example.com\\@127.0.0.1",
        "http://127.0.0.1#@s3.example.com",
        "http://127.0.0.1?@s3.example.com",
        "http://user%40x:pw@s3.example.com",
        "https://AKIA:secret@s3.example.com:443",
    ]
    + [
        "file:///etc/passwd",
        "ftp://s3.example.com",
        "gopher://s3.example.com:70/_",
        "dict://s3.example.com:11211/",
        "ldap://s3.example.com",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "s3://bucket",
        "ws://s3.example.com",
        "//s3.example.com",
        "s3.example.com",
        "http:/s3.example.com",
        "http:///s3.example.com",
        "http://",
        "HTTP://127.0.0.1",
        "hTtPs://LocalHost",
    ]
    + [
        "http://s3.example.com\t",
        " http://127.0.0.1",
        "http://127.0.0.1\n.s3.example.com",
        "http://127.0.0.1\t.s3.example.com",
        "http://s3.example.com\r\n",
        "http://s3.exa mple.com",
        "http://s3.example.com\\",
        "http://127.0.0.1\x00.s3.example.com",
        "http://s3.example.com\u2028",
        "http://%31%32%37.0.0.1",
        "http://127.0.0.1%2f.s3.example.com",
        "http://127。0。0。1",
        "http://localhost\u3002",
    ]
)


@pytest.fixture(autouse=True)
def no_traffic(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Answer names from NAMES (numeric forms as inet_aton would), refuse every connect."""
    seen: list[Any] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        seen.append(host)
        name = str(host).rstrip(".").lower()
        if name in NAMES:
            answers = NAMES[name]
        else:
            try:
                answers = [str(ipaddress.ip_address(name))]
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        infos = []
        for address in answers:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos

    def connect(self: socket.socket, address: Any) -> None:
        raise OSError("test safety net: no connections at save time")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture
def registry() -> Registry:
    return Registry({**settings.load("instance", env={}), "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]})


def _settings(endpoint: str) -> dict[str, Any]:
    return {
        "bucket": "my-backups",
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "path_style": True,
        "access_key_id": "AKIATESTKEY000000001",
        "secret_access_key": "test-secret-never-logged-123",
    }


def test_the_hostile_list_is_long_and_has_no_repeats() -> None:
    assert len(HOSTILE) >= 250
    assert len(set(HOSTILE)) == len(HOSTILE)


def test_every_hostile_endpoint_is_refused_when_saved(db: Database, alice: Account, registry: Registry) -> None:
    saved: list[str] = []
    messages: dict[str, str] = {}
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        for endpoint in HOSTILE:
            try:
                with session.begin_nested():
                    add_destination(session, registry, user, "s3", "b", _settings(endpoint))
                saved.append(endpoint)
            except InvalidInput as exc:
                messages[endpoint] = str(exc)
        count = session.scalar(select(func.count()).select_from(Destination))
    assert saved == [], f"{len(saved)} of {len(HOSTILE)} hostile endpoints were saved: {saved}"
    assert count == 0
    # One clear line each, never a traceback.
    assert all(message and "Traceback" not in message for message in messages.values())


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("http://192.0.0.8", "IETF protocol assignment"),
        ("http://2130706433", "loopback"),
        ("http://0x7f.1", "loopback"),
        ("http://localhost:9000", "private network"),
        ("http://metadata.google.internal", "metadata"),
        ("https://no-such-host.example.net", "does not exist"),
        ("http://s3.example.com:22", "port 22"),
        ("http://user:pw@s3.example.com", "user name or password"),
        ("https://mixed.attacker.example", "127.0.0.1"),
        ("http://134744072", "8.8.8.8"),
    ],
)
def test_each_refusal_says_why_in_one_line(endpoint: str, says: str) -> None:
    with pytest.raises(EndpointNotAllowedError) as caught:
        check_endpoint_at_save(endpoint, AllowList())
    assert says in caught.value.user_message and "\n" not in caught.value.user_message
    assert caught.value.permanent


@pytest.mark.parametrize("endpoint", ["https://s3.example.com", "https://s3.example.com:9000", "http://93.184.215.14"])
def test_a_public_endpoint_is_saved(db: Database, alice: Account, registry: Registry, endpoint: str) -> None:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        row = add_destination(session, registry, user, "s3", "b", _settings(endpoint))
        assert row.id is not None


def test_the_operator_allow_list_lets_a_private_store_be_saved(db: Database, alice: Account) -> None:
    keys = [Fernet.generate_key().decode()]
    registry = Registry(
        {
            **settings.load("instance", env={}),
            "ENCRYPTION_KEYS": keys,
            "ENDPOINT_ALLOW_LIST": ["127.0.0.0/8", "minio.internal"],
        }
    )
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        add_destination(session, registry, user, "s3", "a", _settings("http://127.0.0.1:9000"))
        add_destination(session, registry, user, "s3", "b", _settings("http://minio.internal:9000"))
        with pytest.raises(InvalidInput, match="private-network"):
            add_destination(session, registry, user, "s3", "c", _settings("http://10.0.0.1:9000"))


def test_aws_without_an_endpoint_needs_no_lookup(
    db: Database, alice: Account, registry: Registry, no_traffic: list[Any]
) -> None:
    settings = _settings("")
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        add_destination(session, registry, user, "s3", "aws", settings)
    assert no_traffic == []


# -- the address policy: IANA special-purpose registries --------------------------------------------


def test_the_reported_address_is_refused() -> None:
    assert why_not_public(ipaddress.ip_address("192.0.0.8")) is not None


@pytest.mark.parametrize(("network", "reason"), SPECIAL_PURPOSE, ids=[str(n) for n, _ in SPECIAL_PURPOSE])
def test_every_special_purpose_range_is_refused_at_both_ends(network: Any, reason: str) -> None:
    for address in (network.network_address, network.broadcast_address):
        assert why_not_public(address) is not None, address
        if address.version == 4:
            for wrapped in (f"::ffff:{address}", f"64:ff9b::{address}"):
                assert why_not_public(ipaddress.ip_address(wrapped)) is not None, wrapped
            six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80) | 1)
            assert why_not_public(six_to_four) is not None, six_to_four
