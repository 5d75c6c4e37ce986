"""Archives sealed to the user's own key: only ciphertext reaches the bucket, the mail and a link.

Everything here goes over real sockets (moto behind a recording proxy, the
aiosmtpd server) and is opened with the standard tools (Debian's `age` and
`gpg` binaries), never with Lifeboat's own code: the user's copy must open
without Lifeboat.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import re

import pytest
from flask import Flask
from sqlalchemy import select

from account.records import Account
from exporters.archive.reader import verify_archive
from jobs import api_tokens, get_context, run_lifecycle
from jobs.archive_options import ArchiveOptions, save_archive_options, stopped_words
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.download_links import create_link
from jobs.execute import execute_run
from jobs.scrub import HEALTHY, scrub
from store import Archive, DeliveryAttempt, ExportRun, RunState, User
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from tests.conftest import UserKey
from tests.servers.s3 import FaultProxy, MotoS3
from tests.servers.smtp import SmtpServer
from tests.web.conftest import sign_in
from web.links import link_url

pytestmark = pytest.mark.server

ACCESS, SECRET = "AKIALIFEBOATSEAL0001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSEALKEY01"
# Words of alice's account and of any zip: none may cross the wire once the archive is sealed.
PLAIN_MARKERS = (b"BEGIN:VCARD", b"BEGIN:VCALENDAR", b"PK\x03\x04", b"manifest.json", "Müller".encode(), b"Shopping")


def _alice_with(app: Flask, alice: Account, key: str, *, bucket_url: str | None, bucket: str, email: bool) -> str:
    """alice, her key, her destinations (a bucket through `bucket_url`, her own address), and a run to do."""
    registry = Registry(dict(app.config))
    with get_context(app).db.session(write=True) as session:
        user = replace_account(session, alice)
        user.password_hash = hash_password("pw")
        user.seal_key = key
        if bucket_url is not None:
            settings = {
                "bucket": bucket,
                "endpoint_url": bucket_url,
                "path_style": True,
                "region": "us-east-1",
                "access_key_id": ACCESS,
                "secret_access_key": SECRET,
            }
            add_destination(session, registry, user, "s3", "my bucket", settings)
        if email:
            add_destination(session, registry, user, "email", "me", {})
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
        return run.id


def _delivered(app: Flask, run_id: str) -> tuple[Archive, list[DeliveryAttempt]]:
    with get_context(app).db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.state == RunState.DELIVERED and run.archive is not None, run and run.error
        attempts = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == run_id)))
        session.expunge_all()
        return run.archive, attempts


def _kept_archive(app: Flask, alice: Account, key: UserKey) -> Archive:
    """alice's archive made with her key set and no destination: kept on Lifeboat's disk, for links."""
    run_id = _alice_with(app, alice, key.public, bucket_url=None, bucket="", email=False)
    assert execute_run(get_context(app), run_id, "w") == RunState.DELIVERED
    return _delivered(app, run_id)[0]


def _plain_samples(app: Flask, archive: Archive) -> list[bytes]:
    """32-byte pieces of the plaintext zip, every 2 KiB: any of them on the wire would be a leak."""
    data = (get_context(app).files.local_path(archive.relpath) or b"").read_bytes()  # type: ignore[union-attr]
    return [data[i : i + 32] for i in range(0, len(data) - 32, 2048)]


def _assert_no_plaintext(wire: bytes, samples: list[bytes]) -> None:
    for marker in PLAIN_MARKERS:
        assert marker not in wire, marker
    leaked = [sample for sample in samples if sample in wire]
    assert not leaked, f"{len(leaked)} pieces of the plaintext archive crossed the wire"


def test_a_sealed_archive_in_the_bucket_opens_with_age_to_the_recorded_archive_and_no_plaintext_crosses_the_wire(
    delivery_app: Flask, alice: Account, fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str, age_key: UserKey
) -> None:
    run_id = _alice_with(delivery_app, alice, age_key.public, bucket_url=fault_proxy.url, bucket=s3_bucket, email=False)
    assert execute_run(get_context(delivery_app), run_id, "w") == RunState.DELIVERED
    archive, (attempt,) = _delivered(delivery_app, run_id)
    assert attempt.object_key is not None and attempt.object_key.endswith(archive.filename + ".age")
    listed = moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [o["Key"] for o in listed] == [
        attempt.object_key
    ]  # no manifest.json beside it: it would tell what is inside
    stored = moto_server.client().get_object(Bucket=s3_bucket, Key=attempt.object_key)
    assert stored["ContentType"] == "application/octet-stream"
    ciphertext = stored["Body"].read()
    # The receipt holds both digests: the file the bucket holds, and the archive it opens to.
    assert (hashlib.sha256(ciphertext).hexdigest(), len(ciphertext)) == (attempt.sealed_sha256, attempt.sealed_size)
    plaintext = age_key.open(ciphertext)
    assert hashlib.sha256(plaintext).hexdigest() == attempt.archive_sha256 == archive.sha256
    assert verify_archive(io.BytesIO(plaintext)).email == "alice@example.com"
    assert attempt.sealed_to is not None and attempt.sealed_to.startswith("age key age1")
    wire = b"".join(seen.body for seen in fault_proxy.seen)
    assert ciphertext[:4096] in wire  # the proxy saw the upload itself
    _assert_no_plaintext(wire, _plain_samples(delivery_app, archive))


def test_a_sealed_archive_by_email_opens_with_gpg_and_the_mail_carries_no_plaintext_nor_counts(
    delivery_app: Flask, alice: Account, smtp_server: SmtpServer, openpgp_key: UserKey
) -> None:
    run_id = _alice_with(delivery_app, alice, openpgp_key.public, bucket_url=None, bucket="", email=True)
    assert execute_run(get_context(delivery_app), run_id, "w") == RunState.DELIVERED
    archive, (attempt,) = _delivered(delivery_app, run_id)
    received = smtp_server.received[0]
    message = received.message()
    assert "encrypted to your key" in message["Subject"] and "contact" not in message["Subject"]
    (sealed,) = list(message.iter_attachments())  # no manifest.json attached
    assert sealed.get_filename() == archive.filename + ".gpg"
    assert sealed.get_content_type() == "application/octet-stream"
    ciphertext = sealed.get_content()
    assert hashlib.sha256(ciphertext).hexdigest() == attempt.sealed_sha256
    plaintext = openpgp_key.open(ciphertext)
    assert hashlib.sha256(plaintext).hexdigest() == attempt.archive_sha256 == archive.sha256
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]  # the mail has a text part
    assert f"gpg --output {archive.filename} --decrypt {archive.filename}.gpg" in text
    assert archive.sha256 in text and "contacts" not in text
    decoded = b"".join(
        base64.b64decode(part) for part in re.findall(rb"\r\n\r\n([A-Za-z0-9+/=\r\n]{200,})", received.data)
    )
    _assert_no_plaintext(received.data + decoded, _plain_samples(delivery_app, archive))


def test_a_link_to_a_sealed_archive_serves_only_ciphertext_whole_and_refuses_its_parts(
    delivery_app: Flask, alice: Account, age_key: UserKey
) -> None:
    archive = _kept_archive(delivery_app, alice, age_key)
    with get_context(delivery_app).db.session(write=True) as session:
        link = create_link(session, archive.id, archive.user_id, now=utcnow(), max_age=dt.timedelta(days=1))
        url = link_url("", delivery_app.config["SECRET_KEY"], link.id)
    client = delivery_app.test_client()
    # A resumed download would splice two different ciphertexts: a range is answered with the whole file.
    got = client.get(url, headers={"Range": "bytes=100-"})
    assert got.status_code == 200 and got.headers["Accept-Ranges"] == "none" and "ETag" not in got.headers
    assert got.headers["Content-Disposition"].endswith(archive.filename + ".age")
    assert hashlib.sha256(age_key.open(got.data)).hexdigest() == archive.sha256
    _assert_no_plaintext(got.data, _plain_samples(delivery_app, archive))
    for part in ("/SHA256SUMS", "/parts", "/parts/manifest.json"):
        refused = client.get(url + part)
        assert refused.status_code == 403 and b"age --decrypt" in refused.data, part
        assert b"contacts/" not in refused.data


def test_the_owner_signed_in_still_downloads_the_plain_archive(
    delivery_app: Flask, alice: Account, age_key: UserKey
) -> None:
    archive = _kept_archive(delivery_app, alice, age_key)
    client = delivery_app.test_client()
    sign_in(client, password="pw")
    got = client.get(f"/archives/{archive.id}/download")
    assert got.status_code == 200 and hashlib.sha256(got.data).hexdigest() == archive.sha256


def test_scrub_checks_a_sealed_copy_against_its_ciphertext_and_finds_it_healthy(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, age_key: UserKey
) -> None:
    run_id = _alice_with(delivery_app, alice, age_key.public, bucket_url=moto_server.url, bucket=s3_bucket, email=False)
    ctx = get_context(delivery_app)
    assert execute_run(ctx, run_id, "w") == RunState.DELIVERED
    light = scrub(ctx, email="alice@example.com", deep=False)
    deep = scrub(ctx, email="alice@example.com", deep=True)
    assert [(f.state, f.deep) for f in light + deep] == [(HEALTHY, False), (HEALTHY, True)]


def test_a_stored_key_that_can_no_longer_be_used_sends_nothing_and_says_how_to_fix_it(
    delivery_app: Flask, alice: Account, smtp_server: SmtpServer, age_key: UserKey
) -> None:
    run_id = _alice_with(delivery_app, alice, age_key.public, bucket_url=None, bucket="", email=True)
    ctx = get_context(delivery_app)
    with ctx.db.session(write=True) as session:
        user = session.scalar(select(User))
        assert user is not None
        user.seal_key = age_key.public[:-3] + "qqq"  # its checksum no longer holds
    ctx.notify_failure = lambda user, run: None
    assert execute_run(ctx, run_id, "w") == RunState.FAILED
    assert smtp_server.received == []  # not even a plain copy
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.error is not None
        assert "cannot be used" in run.error and "Settings" in run.error


def test_stopping_encryption_revokes_the_links_handed_out_as_ciphertext(
    delivery_app: Flask, alice: Account, age_key: UserKey
) -> None:
    archive = _kept_archive(delivery_app, alice, age_key)
    ctx = get_context(delivery_app)
    with ctx.db.session(write=True) as session:
        link = create_link(session, archive.id, archive.user_id, now=utcnow(), max_age=dt.timedelta(days=1))
        url = link_url("", delivery_app.config["SECRET_KEY"], link.id)
    client = delivery_app.test_client()
    assert client.get(url).headers["Content-Disposition"].endswith(".zip.age")
    with ctx.db.session(write=True) as session:
        user = session.get(User, archive.user_id)
        assert user is not None
        assert save_archive_options(session, user, ArchiveOptions(seal_key=""), now=utcnow()) == 1
    for path in ("", "/parts", "/SHA256SUMS"):
        gone = client.get(url + path)
        assert gone.status_code == 410 and b"PK\x03\x04" not in gone.data, path
    assert stopped_words(1).endswith("Your 1 download link was revoked: it was handed out as links to encrypted files.")


def test_the_archive_page_and_the_api_give_a_sealed_archives_commands_not_resume_or_parts(
    delivery_app: Flask, alice: Account, age_key: UserKey
) -> None:
    archive = _kept_archive(delivery_app, alice, age_key)
    client = delivery_app.test_client()
    sign_in(client, password="pw")
    with get_context(delivery_app).db.session(write=True) as session:
        create_link(session, archive.id, archive.user_id, now=utcnow(), max_age=dt.timedelta(days=1))
        secret = api_tokens.create_token(session, archive.user_id, "t", days=1, now=utcnow()).secret
    page = client.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert f"age --decrypt -i YOUR-KEY-FILE -o {archive.filename} {archive.filename}.age" in page
    assert f"--expect {archive.sha256}" in page and "-C -" not in page and "SHA256SUMS" not in page
    (listed,) = client.get(
        f"/api/v1/archives/{archive.id}/links", headers={"Authorization": f"Bearer {secret}"}
    ).get_json()
    assert (listed["sealed"], listed["sha256sums_url"], listed["parts_url"]) == (True, None, None)


def test_a_link_download_never_has_the_receipts_sealed_sha256_and_the_pages_say_only_the_plaintext_one_matches(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, age_key: UserKey
) -> None:
    # User trial 9: a link's download was compared with the receipt's encrypted-file SHA-256 and looked corrupt.
    run_id = _alice_with(delivery_app, alice, age_key.public, bucket_url=moto_server.url, bucket=s3_bucket, email=False)
    assert execute_run(get_context(delivery_app), run_id, "w") == RunState.DELIVERED
    archive, (attempt,) = _delivered(delivery_app, run_id)
    with get_context(delivery_app).db.session(write=True) as session:
        link = create_link(session, archive.id, archive.user_id, now=utcnow(), max_age=dt.timedelta(days=1))
        url = link_url("", delivery_app.config["SECRET_KEY"], link.id)
    client = delivery_app.test_client()
    got = client.get(url)
    assert got.status_code == 200
    assert hashlib.sha256(got.data).hexdigest() == got.headers["X-Content-SHA256"] != attempt.sealed_sha256
    stored = moto_server.client().get_object(Bucket=s3_bucket, Key=attempt.object_key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == attempt.sealed_sha256  # the receipt is right, for that copy
    opened = {hashlib.sha256(age_key.open(copy)).hexdigest() for copy in (got.data, stored)}
    assert opened == {archive.sha256}  # decrypted, both are the archive

    sign_in(client, password="pw")
    run_page = html.unescape(client.get(f"/runs/{run_id}").get_data(as_text=True))
    assert attempt.sealed_sha256 in run_page
    assert (
        "This copy's only: each encryption, a download link's too, is new ciphertext. "
        "Decrypted, every copy matches the archive SHA-256 below."
    ) in run_page
    archive_page = html.unescape(client.get(f"/archives/{archive.id}").get_data(as_text=True))
    said = re.search(r'<p id="sealed-digests">(.*?)</p>', archive_page, re.S)
    assert said is not None
    words = " ".join(said.group(1).split())
    assert "its SHA-256 differs from every other copy's, including the encrypted file SHA-256 on a delivery" in words
    assert f'Only the decrypted zip\'s SHA-256 matches: <code class="digest">{archive.sha256}</code>' in words
    automate = " ".join(html.unescape(client.get("/automate").get_data(as_text=True)).split())
    assert "It never matches a delivery receipt's <code>sealed_sha256</code> either" in automate
