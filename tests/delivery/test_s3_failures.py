"""S3 failures a user must be told about precisely, and secrets that must never leak.

Credentials, denied actions and missing buckets come from moto with its IAM
auth switched on (real signature checks); wrong regions, STS refusals and a
stalled or unreachable store are produced on loopback by the fault proxy, a
closed port, a self-signed TLS listener and a patched resolver.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery.s3 import S3Delivery, S3Settings, iam_policy
from delivery.s3.addresses import EndpointNotAllowedError
from delivery.s3.settings import Timeouts
from errors import DeliveryError
from tests.delivery.test_s3 import KEYS, LOOPBACK, delivery, make_payload
from tests.servers.s3 import Fault, FaultProxy, MotoS3, s3_error, sts_error

QUICK = Timeouts(connect=1, read=5, max_attempts=1)
ROLE = "arn:aws:iam::123456789012:role/lifeboat-delivery"


# -- against moto with IAM auth on -------------------------------------------------------


@pytest.mark.server
def test_it_reports_an_unknown_access_key(moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any) -> None:
    moto_iam_user(json_policy(s3_bucket))
    target = S3Delivery(
        S3Settings(
            bucket=s3_bucket,
            endpoint_url=moto_server.url,
            path_style=True,
            access_key_id="AKIANOSUCHKEY0000000",
            secret_access_key="whatever-secret",
        ),
        allow_list=LOOPBACK,
        timeouts=QUICK,
    )
    error = connection_error(target)
    assert error.permanent and "does not recognise the access key ID" in error.user_message


@pytest.mark.server
def test_it_reports_a_wrong_secret_key(moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any) -> None:
    keys = moto_iam_user(json_policy(s3_bucket))
    target = with_keys(moto_server, s3_bucket, keys["access_key_id"], "not-the-right-secret")
    error = connection_error(target)
    assert error.permanent and "secret access key" in error.user_message


@pytest.mark.server
def test_it_names_the_action_a_policy_does_not_allow(moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any) -> None:
    keys = moto_iam_user(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:DeleteObject", "s3:ListBucket"],
                    "Resource": "*",
                }
            ],
        }
    )
    error = connection_error(with_keys(moto_server, s3_bucket, **keys))
    assert error.permanent and "Access denied for s3:PutObject" in error.user_message


@pytest.mark.server
def test_it_works_with_exactly_the_suggested_policy(
    moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any, tmp_path: Path
) -> None:
    keys = moto_iam_user(json_policy(s3_bucket))
    target = with_keys(moto_server, s3_bucket, retention_keep=1, **keys)
    assert "listing works" in target.test_connection()
    old = target.deliver(make_payload(tmp_path, 1000, "lifeboat-a-20261001T000000Z.zip", when=OCTOBER))
    new = target.deliver(make_payload(tmp_path, 1000, "lifeboat-a-20261101T000000Z.zip", when=NOVEMBER))
    verified = [old.object_key or "", new.object_key or ""]
    report = target.prune(target.settings.retention, dt.UTC, name_prefix="lifeboat-a-", verified=verified)
    assert (report.deleted, report.skipped, report.warnings) == ((old.object_key,), (), ())


@pytest.mark.server
def test_the_suggested_policy_allows_every_call_delivery_makes(
    moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any
) -> None:
    """Each S3 call delivery, retention and the connection test make, under exactly the policy.

    Aborting a failed multipart upload is best effort in the code, so nothing else would
    notice a policy without s3:AbortMultipartUpload: the parts of every failed upload
    would stay in the user's bucket, billed and invisible in a normal listing.
    """
    s3 = client_with_keys(moto_server, **moto_iam_user(json_policy(s3_bucket)))
    key, bucket = "lifeboat/2026/11/a.zip", {"Bucket": s3_bucket}
    part = b"x" * (5 * 1024 * 1024)
    calls: list[tuple[str, Any]] = [
        ("PutObject", lambda: s3.put_object(Key=key, Body=b"zip", IfNoneMatch="*", **bucket)),
        ("HeadObject", lambda: s3.head_object(Key=key, ChecksumMode="ENABLED", **bucket)),
        ("GetObject", lambda: s3.get_object(Key=key, **bucket)["Body"].read()),
        ("ListObjectsV2", lambda: s3.list_objects_v2(Prefix="lifeboat/", **bucket)),
        ("DeleteObject", lambda: s3.delete_object(Key=key, **bucket)),
    ]
    for name, call in calls:
        try:
            call()
        except ClientError as exc:
            pytest.fail(f"the suggested policy refuses {name}: {exc}")

    upload = s3.create_multipart_upload(Key=key, ChecksumAlgorithm="SHA256", **bucket)["UploadId"]
    etag = s3.upload_part(Key=key, UploadId=upload, PartNumber=1, Body=part, **bucket)["ETag"]
    s3.complete_multipart_upload(
        Key=key, UploadId=upload, MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}, **bucket
    )
    abandoned = s3.create_multipart_upload(Key=key, **bucket)["UploadId"]
    try:
        s3.abort_multipart_upload(Key=key, UploadId=abandoned, **bucket)
    except ClientError as exc:
        pytest.fail(f"the suggested policy refuses AbortMultipartUpload, so failed uploads pile up: {exc}")
    moto_server.set_auth(False)
    assert "Uploads" not in moto_server.client().list_multipart_uploads(Bucket=s3_bucket)


@pytest.mark.server
@pytest.mark.parametrize(
    ("action", "call", "arguments"),
    [
        ("s3:GetObject", "head_object", {"Key": "lifeboat/probe", "ChecksumMode": "ENABLED"}),
        ("s3:ListBucket", "list_objects_v2", {"Prefix": "lifeboat/"}),
        ("s3:PutObject", "create_multipart_upload", {"Key": "lifeboat/new"}),
    ],
)
def test_moto_checks_the_iam_action_aws_documents_for_each_call(
    moto_server: MotoS3, s3_bucket: str, moto_iam_user: Any, action: str, call: str, arguments: dict[str, Any]
) -> None:
    """The policy tests above trust moto to authorise each call as AWS does.

    AWS's API reference: HeadObject needs s3:GetObject, ListObjectsV2 s3:ListBucket, the
    multipart calls s3:PutObject; s3:HeadObject, s3:ListObjectsV2 and s3:CreateMultipartUpload
    are not IAM actions at all. moto 5.2.6 checked those API names instead, and the policy test
    failed with a bare 403; this names the cause if a moto upgrade does it again.
    """
    moto_server.client().put_object(Bucket=s3_bucket, Key="lifeboat/probe", Body=b"probe")
    resources = [f"arn:aws:s3:::{s3_bucket}", f"arn:aws:s3:::{s3_bucket}/*"]
    keys = moto_iam_user(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resources}]}
    )
    client = client_with_keys(moto_server, **keys)
    try:
        getattr(client, call)(Bucket=s3_bucket, **arguments)
    except ClientError as exc:
        pytest.fail(
            f"moto refused {call} to a policy allowing {action}, the action AWS checks for it ({exc}): "
            "a moto regression, see requirements/constraints.txt"
        )


@pytest.mark.server
def test_it_reports_a_missing_bucket(moto_server: MotoS3) -> None:
    error = connection_error(delivery(moto_server.url, "no-such-bucket-here", timeouts=QUICK))
    assert error.permanent and "'no-such-bucket-here' does not exist" in error.user_message


# -- on the wire: regions, STS, unreachable, TLS, timeouts --------------------------------


@pytest.mark.server
@pytest.mark.parametrize(
    "fault",
    [
        s3_error(
            301,
            "PermanentRedirect",
            "Use the right endpoint.",
            headers={"x-amz-bucket-region": "eu-west-1"},
        ),
        s3_error(
            400,
            "AuthorizationHeaderMalformed",
            "the region 'us-east-1' is wrong",
            Region="eu-west-1",
        ),
    ],
    ids=["permanent-redirect", "authorization-header-malformed"],
)
def test_it_names_the_bucket_region_when_the_region_is_wrong(
    fault_proxy: FaultProxy, s3_bucket: str, fault: Fault
) -> None:
    fault_proxy.add(fault, times=None)
    error = connection_error(delivery(fault_proxy.url, s3_bucket, timeouts=QUICK))
    assert error.permanent
    assert "is in region 'eu-west-1'" in error.user_message and "Set the region to 'eu-west-1'" in error.user_message


def role_delivery(proxy: FaultProxy, bucket: str, external_id: str) -> tuple[S3Delivery, list[bytes], list[dict]]:
    """A role-based delivery whose STS calls go through the proxy; also what STS got and gave."""
    base = botocore.session.Session()
    base.set_credentials("AKIAOPERATOR00000000", "operator-secret-never-logged")
    sent: list[bytes] = []
    issued: list[dict[str, Any]] = []
    base.register("before-send.sts.AssumeRole", lambda request, **_: sent.append(as_bytes(request.body)))
    base.register(
        "after-call.sts.AssumeRole",
        lambda parsed, **_: issued.append(parsed.get("Credentials", {})),
    )
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=proxy.url,
        path_style=True,
        role_arn=ROLE,
        external_id=external_id,
    )
    target = S3Delivery(
        settings,
        allow_list=LOOPBACK,
        botocore_session=base,
        sts_endpoint_url=proxy.url,
        timeouts=QUICK,
    )
    return target, sent, issued


def only_external_id(expected: str) -> tuple[Fault, Any]:
    """STS stand-in for a trust policy with an sts:ExternalId condition (moto ignores it)."""

    def wrong(seen: Any) -> bool:
        form = seen.form
        return form.get("Action") == ["AssumeRole"] and form.get("ExternalId") != [expected]

    return sts_error(403, "AccessDenied", f"Not authorized to perform sts:AssumeRole on {ROLE}"), wrong


@pytest.mark.server
def test_it_assumes_the_role_with_the_users_external_id(
    fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault, when = only_external_id("ext-alice-7f3c9a")
    fault_proxy.add(fault, when=when, times=None)
    target, sent, _ = role_delivery(fault_proxy, s3_bucket, "ext-alice-7f3c9a")
    with target:
        receipt = target.deliver(make_payload(tmp_path, 1000))
    assert receipt.location.startswith(f"s3://{s3_bucket}/")
    assert len(sent) == 1 and b"ExternalId=ext-alice-7f3c9a" in sent[0]
    assert b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Flifeboat-delivery" in sent[0]
    assert target.assume_role_calls == 1


@pytest.mark.server
def test_it_reports_a_refused_role_as_permanent_without_echoing_the_external_id(
    fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault, when = only_external_id("ext-alice-7f3c9a")
    fault_proxy.add(fault, when=when, times=None)
    target, sent, _ = role_delivery(fault_proxy, s3_bucket, "ext-mallory-0000")
    with target, pytest.raises(DeliveryError) as caught:
        target.deliver(make_payload(tmp_path, 1000))
    assert b"ExternalId=ext-mallory-0000" in sent[0]
    assert caught.value.permanent and "external ID" in caught.value.user_message
    assert "ext-mallory-0000" not in f"{caught.value} {caught.value.user_message}"
    assert not any(s.method == "PUT" for s in fault_proxy.seen)


@pytest.mark.server
def test_it_reports_a_closed_port_as_unreachable_and_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = connection_error(delivery(f"http://127.0.0.1:{port}", "some-bucket", timeouts=QUICK))
    assert not error.permanent and "Nothing accepted the connection" in error.user_message


@pytest.mark.server
def test_it_reports_an_unknown_host_name_as_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "s3.nowhere.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    error = connection_error(delivery("https://s3.nowhere.example", "some-bucket", timeouts=QUICK))
    assert error.permanent and "does not exist. Check the endpoint URL" in error.user_message


@pytest.fixture
def self_signed_tls(tmp_path: Path) -> Iterator[int]:
    """A loopback listener that completes TLS handshakes with an untrusted certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    folder = tmp_path
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context.load_cert_chain(folder / "c.pem", folder / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


@pytest.mark.server
def test_it_reports_an_untrusted_certificate_as_a_permanent_tls_error(self_signed_tls: int) -> None:
    error = connection_error(delivery(f"https://127.0.0.1:{self_signed_tls}", "some-bucket", timeouts=QUICK))
    assert error.permanent and "TLS certificate" in error.user_message


@pytest.mark.server
def test_it_reports_a_stalled_connection_test_as_a_transient_timeout(fault_proxy: FaultProxy, s3_bucket: str) -> None:
    fault_proxy.add(Fault(delay=3.0), times=None)
    target = delivery(fault_proxy.url, s3_bucket, timeouts=Timeouts(connect=1, read=0.3, max_attempts=1))
    error = connection_error(target)
    assert not error.permanent and "Timed out waiting for" in error.user_message


@pytest.mark.server
def test_it_refuses_a_private_endpoint_as_permanent(moto_server: MotoS3, s3_bucket: str) -> None:
    target = delivery(moto_server.url, s3_bucket, allow_list=None)
    error = connection_error(target)
    assert isinstance(error, EndpointNotAllowedError) and error.permanent


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.server
def test_it_keeps_every_secret_out_of_debug_logs(
    fault_proxy: FaultProxy,
    moto_server: MotoS3,
    s3_bucket: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "urllib3", "s3transfer", "boto3"):
        caplog.set_level(logging.DEBUG, logger=name)
    target, _, issued = role_delivery(fault_proxy, s3_bucket, "ext-alice-7f3c9a")
    with target:
        target.deliver(make_payload(tmp_path, 1000))
    keyed = delivery(moto_server.url, s3_bucket)
    with keyed:
        keyed.deliver(make_payload(tmp_path, 1000, "lifeboat-b-20261125T040000Z.zip"))
    fault_proxy.add(s3_error(403, "SignatureDoesNotMatch", "no"), times=None)
    failing = delivery(fault_proxy.url, s3_bucket, timeouts=QUICK)
    error = connection_error(failing)
    logged = caplog.text + str(error) + error.user_message
    assert "Response body" in logged and "AssumeRole" in logged  # DEBUG really was on
    secrets = [
        "ext-alice-7f3c9a",
        "operator-secret-never-logged",
        *KEYS.values(),
        issued[0]["SecretAccessKey"],
        issued[0]["SessionToken"],
    ]
    for secret in secrets:
        assert secret not in logged


# -- helpers -------------------------------------------------------------------------------


OCTOBER = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
NOVEMBER = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def json_policy(bucket: str) -> dict[str, Any]:
    return json.loads(iam_policy(bucket, "lifeboat"))


def with_keys(moto: MotoS3, bucket: str, access_key_id: str, secret_access_key: str, **extra: Any) -> S3Delivery:
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=moto.url,
        path_style=True,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        **extra,
    )
    return S3Delivery(settings, allow_list=LOOPBACK, timeouts=QUICK)


def client_with_keys(moto: MotoS3, access_key_id: str, secret_access_key: str) -> Any:
    """A plain boto3 S3 client signing as an IAM user (moto's auth must be on to matter)."""
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
    )


def connection_error(target: S3Delivery) -> DeliveryError:
    with target, pytest.raises(DeliveryError) as caught:
        target.test_connection()
    return caught.value


def as_bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)
