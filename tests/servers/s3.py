"""S3 on loopback for tests: moto's threaded server, a fresh bucket per test, and a fault proxy.

Why a proxy: moto accepts a wrong `ChecksumSHA256` and ignores `ExternalId`,
so the failures delivery code must survive (a flipped byte, a 500, a stalled
response, an STS refusal) are injected on the wire between botocore and moto.
Everything listens on 127.0.0.1 and nothing is forwarded anywhere but moto.

Load with `pytest_plugins = ["tests.servers.s3"]` (or `pytest -p tests.servers.s3`).
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ADMIN_KEYS = {
    "aws_access_key_id": "AKIAMOTOADMIN0000000",
    "aws_secret_access_key": "moto-admin-secret",
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}


@dataclass
class MotoS3:
    """The running moto server and an unrestricted client for arranging and inspecting state."""

    url: str
    host: str
    port: int

    def client(self, service: str = "s3", **kwargs: Any) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **ADMIN_KEYS, **kwargs)

    def set_auth(self, enforce: bool) -> None:
        """Make moto check signatures and IAM policies (process-wide) or stop checking."""
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0" if enforce else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = MotoS3(url=f"http://{host}:{port}", host=host, port=port)
    moto.client().list_buckets()  # answers before any test runs
    try:
        yield moto
    finally:
        server.stop()


def _empty_and_delete(client: Any, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    # One DeleteObjects call per page of up to 1,000 keys: a year of archives (738 objects)
    # took ~5 s of teardown deleted one at a time.
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    # A test may have switched versioning on: every version and delete marker must go too.
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if versions:
            doomed = [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in versions]
            client.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_bucket(moto_server: MotoS3) -> Iterator[str]:
    """A uniquely named, empty bucket, deleted with its contents afterwards."""
    name = f"lifeboat-test-{uuid.uuid4().hex[:12]}"
    client = moto_server.client()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        moto_server.set_auth(False)
        _empty_and_delete(client, name)


@pytest.fixture
def s3_locked_bucket(moto_server: MotoS3) -> Iterator[str]:
    """A bucket made with S3 Object Lock on (so versioned); governance locks and legal holds are lifted to clean up.

    Compliance-locked versions cannot be removed by anyone before their date, so a
    test that makes one leaves the bucket behind in moto (it goes with the server).
    """
    name = f"lifeboat-locked-{uuid.uuid4().hex[:12]}"
    client = moto_server.client()
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    try:
        yield name
    finally:
        moto_server.set_auth(False)
        try:
            for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                for item in page.get("Versions", []):
                    version: dict[str, Any] = {"Bucket": name, "Key": item["Key"], "VersionId": item["VersionId"]}
                    client.put_object_legal_hold(**version, LegalHold={"Status": "OFF"})
                    client.delete_object(**version, BypassGovernanceRetention=True)
                for item in page.get("DeleteMarkers", []):
                    client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
            client.delete_bucket(Bucket=name)
        except ClientError as exc:  # only a compliance lock may keep a version: anything else is a bug here
            if exc.response.get("Error", {}).get("Code") != "AccessDenied":
                raise


@pytest.fixture
def moto_iam_user(moto_server: MotoS3) -> Iterator[Callable[[dict[str, Any]], dict[str, str]]]:
    """Create IAM users with a policy and switch moto's auth on; off again afterwards.

    Returns `make(policy) -> {"access_key_id", "secret_access_key"}`. Call it
    before enforcing auth is wanted: it turns enforcement on as it returns.
    """
    iam = moto_server.client("iam")
    made: list[str] = []

    def make(policy: dict[str, Any]) -> dict[str, str]:
        name = f"lifeboat-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="lifeboat", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        made.append(name)
        moto_server.set_auth(True)
        return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    try:
        yield make
    finally:
        moto_server.set_auth(False)


# An IAM policy that allows every S3 action on every bucket.
EVERY_S3_ACTION = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture
def moto_s3_keys(moto_iam_user: Callable[[dict[str, Any]], dict[str, str]]) -> dict[str, str]:
    """Keys of an IAM user allowed every S3 action, with moto checking signatures: a wrong secret is refused.

    Ask for it after `s3_bucket` (in a test's parameters too): the bucket is made without signatures.
    """
    return moto_iam_user(EVERY_S3_ACTION)


# -- the fault proxy -----------------------------------------------------------------


@dataclass
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)

    @property
    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode("utf-8", "replace"))


@dataclass
class Fault:
    """What to do with a matching request: answer it ourselves, corrupt it, or stall it."""

    status: int | None = None  # answer with this status instead of forwarding
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    flip_byte_at: int | None = None  # flip one request-body byte, then forward
    delay: float = 0.0  # seconds to wait before answering
    drop_request_headers: tuple[str, ...] = ()  # e.g. a store that ignores checksum headers
    response_headers: dict[str, str] = field(default_factory=dict)  # override what moto answered


@dataclass
class _Rule:
    when: Callable[[Seen], bool]
    fault: Fault
    remaining: int | None


def s3_error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: str) -> Fault:
    """An S3-style XML error answer; `extra` become elements such as `<Region>`."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    body = f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}<RequestId>FAULT</RequestId></Error>"
    return Fault(
        status=status,
        body=body.encode(),
        headers={"Content-Type": "application/xml", **(headers or {})},
    )


def sts_error(status: int, code: str, message: str) -> Fault:
    """An STS (query protocol) XML error answer."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>FAULT</RequestId></ErrorResponse>"
    )
    return Fault(status=status, body=body.encode(), headers={"Content-Type": "text/xml"})


class FaultProxy:
    """A reverse proxy on 127.0.0.1 in front of moto that applies `Fault`s to matching requests."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.seen: list[Seen] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for botocore's Expect

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def add(self, fault: Fault, *, when: Callable[[Seen], bool] = lambda _: True, times: int | None = 1) -> None:
        """Apply `fault` to the next `times` matching requests (None: all of them)."""
        with self._lock:
            self._rules.append(_Rule(when, fault, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _match(self, seen: Seen) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining != 0 and rule.when(seen):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
        return None

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        seen = Seen(handler.command, handler.path, dict(handler.headers.items()), body)
        with self._lock:
            self.seen.append(seen)
        fault = self._match(seen) or Fault()
        if fault.delay and self.stopping.wait(fault.delay):
            return
        if fault.flip_byte_at is not None and body:
            at = min(fault.flip_byte_at, len(body) - 1)
            body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
        if fault.status is not None:
            status, headers, payload = fault.status, dict(fault.headers), fault.body
        else:
            dropped = {name.lower() for name in fault.drop_request_headers}
            forwarded = Seen(
                seen.method,
                seen.path,
                {k: v for k, v in seen.headers.items() if k.lower() not in dropped},
                body,
            )
            status, headers, payload = self._forward(forwarded, body)
            lowered = {name.lower() for name in fault.response_headers}
            headers = {k: v for k, v in headers.items() if k.lower() not in lowered}
            headers.update(fault.response_headers)
        handler.send_response(status)
        for name, value in headers.items():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        if handler.command == "HEAD":
            handler.send_header("Content-Length", headers.get("Content-Length", "0"))
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _forward(self, seen: Seen, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in seen.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(seen.method, seen.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            return answer.status, dict(answer.getheaders()), payload
        finally:
            connection.close()

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fault_proxy(moto_server: MotoS3) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's moto server."""
    proxy = FaultProxy(moto_server.host, moto_server.port)
    try:
        yield proxy
    finally:
        proxy.close()
