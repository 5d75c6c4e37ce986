"""Retention in the user's bucket against moto's real server: a simulated year of daily archives.

Each test seeds a year of alice's daily archives (each with its manifest) as
Lifeboat lays them out, plus objects that are not hers to delete, then prunes
through `S3Delivery.prune` and checks exactly which keys remain. The expected
survivors are written out by hand from the calendar, not computed by the code
under test.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from delivery.retention_policy import NEWEST_VERIFIED, RetentionPolicy
from delivery.s3 import manifest_key
from errors import DeliveryError
from tests.delivery.test_s3 import delivery
from tests.servers.s3 import Fault, FaultProxy, MotoS3, s3_error

pytestmark = pytest.mark.server

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
ALICE = "lifeboat-alice-"
# Not alice's archives, or not archives at all: none of these may ever be deleted.
FOREIGN = [
    "lifeboat/notes-i-keep-here.txt",
    "lifeboat/2026/03/holiday-photos.zip",
    "lifeboat/2026/05/lifeboat-bob-20260501T030000Z.zip",  # another account sharing the bucket
    "lifeboat/2026/05/lifeboat-alice-bob-20260502T030000Z.zip",  # a name that merely starts like hers
    "lifeboat/2026/06/lifeboat-alice-20260501T030000Z.zip",  # folder and stamp disagree: not ours
    "lifeboat/2026/07/lifeboat-alice-20260799T030000Z.zip",  # no such day
    "lifeboat/2026/08/nested/lifeboat-alice-20260801T030000Z.zip",
    "elsewhere/2026/01/lifeboat-alice-20260101T030000Z.zip",  # outside the prefix
]


def archive_key(day: dt.date) -> str:
    return f"lifeboat/{day:%Y/%m}/{ALICE}{day:%Y%m%d}T030000Z.zip"


def a_year() -> list[str]:
    """Every day of 2026, one archive at 03:00 UTC (22:00 or 23:00 the evening before in New York)."""
    first = dt.date(2026, 1, 1)
    return [archive_key(first + dt.timedelta(days=n)) for n in range(365)]


def seed(moto: MotoS3, bucket: str, archives: list[str]) -> None:
    """Put the archives, their manifests and the foreign objects (eight at a time: a year is 738 objects)."""
    client = moto.client()
    objects = [(key, b"PK archive " + key.encode()) for key in archives]
    objects += [(manifest_key(key), json.dumps({"key": key}).encode()) for key in archives]
    objects += [(key, b"not lifeboat's") for key in FOREIGN]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), objects))


def bucket_keys(moto: MotoS3, bucket: str) -> set[str]:
    pages = moto.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def with_manifests(archives: list[str]) -> set[str]:
    return {*archives, *map(manifest_key, archives)}


def days(*dates: tuple[int, int]) -> list[str]:
    return [archive_key(dt.date(2026, month, day)) for month, day in dates]


def seed_in_store(bucket: str, archives: list[str]) -> None:
    """The objects `seed` puts, put straight into the running moto server's store (it runs in this process).

    Why: a year is 738 objects, and putting them one request at a time over loopback was
    most of each year test's time (4-6 s of setup, 2.7 s of CPU). The uploads are not what
    these tests are about; prune's listing, HEADs and deletes still go over HTTP to that
    server, which answers from this store.
    """
    store = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    assert bucket in store.buckets, "moto keeps its buckets elsewhere now: seed over HTTP instead"
    for key in archives:
        store.put_object(bucket, key, b"PK archive " + key.encode())
        store.put_object(bucket, manifest_key(key), json.dumps({"key": key}).encode())
    for key in FOREIGN:
        store.put_object(bucket, key, b"not lifeboat's")


@pytest.fixture
def year(moto_server: MotoS3, s3_bucket: str) -> list[str]:
    archives = a_year()
    seed_in_store(s3_bucket, archives)
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(archives) | set(FOREIGN)  # as the server lists them
    return archives


def test_keep_last_over_a_year_leaves_exactly_the_newest_archives(
    moto_server: MotoS3, s3_bucket: str, year: list[str]
) -> None:
    with delivery(moto_server.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=5), UTC, name_prefix=ALICE, verified=year)
    survivors = days((12, 27), (12, 28), (12, 29), (12, 30), (12, 31))
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(survivors) | set(FOREIGN)
    assert len(report.deleted) == 360 and report.skipped == ()
    assert report.summary() == "Retention: deleted 360 old archive(s), kept 5."


def test_grandfather_father_son_over_a_year_counts_periods_in_the_users_zone(
    moto_server: MotoS3, s3_bucket: str, year: list[str]
) -> None:
    """7 daily, 4 weekly, 12 monthly, last 3, in New York, where 03:00 UTC is the evening before.

    daily: New York's 24..30 December (UTC 25..31); weekly (ISO): New York's Wednesday 30 December
    (2026-W53), Sundays 27, 20 and 13 December (UTC 28, 21, 14); monthly: each New York month's
    last evening, i.e. the UTC archive of the 1st from February to December, and 31 December for
    December itself. January's first archive is New York's 31 December 2025: a thirteenth month, gone.
    """
    policy = RetentionPolicy(last=3, daily=7, weekly=4, monthly=12)
    with delivery(moto_server.url, s3_bucket) as target:
        report = target.prune(policy, NEW_YORK, name_prefix=ALICE, verified=year)
    survivors = [
        *days((12, 25), (12, 26), (12, 27), (12, 28), (12, 29), (12, 30), (12, 31)),
        *days((12, 21), (12, 14)),
        *days(*[(month, 1) for month in range(2, 13)]),
    ]
    assert len(survivors) == 20
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(survivors) | set(FOREIGN)
    reasons = {d.key: d.reasons for d in report.plan.keep}
    assert reasons[archive_key(dt.date(2026, 12, 31))] == (
        NEWEST_VERIFIED,
        "last 3",
        "daily 2026-12-30",
        "weekly 2026-W53",
        "monthly 2026-12",
    )
    assert reasons[archive_key(dt.date(2026, 12, 28))] == ("daily 2026-12-27", "weekly 2026-W52")
    assert reasons[archive_key(dt.date(2026, 2, 1))] == ("monthly 2026-01",)


def test_pruning_again_deletes_nothing_more(moto_server: MotoS3, s3_bucket: str, year: list[str]) -> None:
    policy = RetentionPolicy(daily=7, weekly=4, monthly=12)
    with delivery(moto_server.url, s3_bucket) as target:
        target.prune(policy, UTC, name_prefix=ALICE, verified=year)
        before = bucket_keys(moto_server, s3_bucket)
        again = target.prune(policy, UTC, name_prefix=ALICE, verified=year)
    assert again.deleted == () and bucket_keys(moto_server, s3_bucket) == before


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(
    moto_server: MotoS3, s3_bucket: str, year: list[str]
) -> None:
    before = bucket_keys(moto_server, s3_bucket)
    with delivery(moto_server.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=5), UTC, name_prefix=ALICE, verified=year, dry_run=True)
    assert bucket_keys(moto_server, s3_bucket) == before
    assert [d.key for d in report.plan.delete] == year[-6::-1]  # newest first, all but the last five
    assert report.deleted == ()
    assert report.summary() == "Retention dry run: would delete 360 of 365 archive(s), keeping 5."


def test_the_newest_verified_archive_survives_a_policy_that_would_delete_it(
    moto_server: MotoS3, s3_bucket: str, year: list[str]
) -> None:
    """The last ten days were put there by someone else (not verified by Lifeboat): last=1 keeps 21 December too."""
    verified = year[:-10]
    with delivery(moto_server.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=verified)
    survivors = days((12, 31), (12, 21))
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(survivors) | set(FOREIGN)
    assert report.plan.keep[1].reasons == (NEWEST_VERIFIED,)


def test_nothing_is_deleted_while_no_archive_is_verified(moto_server: MotoS3, s3_bucket: str, year: list[str]) -> None:
    before = bucket_keys(moto_server, s3_bucket)
    with delivery(moto_server.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=[])
    assert bucket_keys(moto_server, s3_bucket) == before
    assert report.summary() == "Retention: no verified archive yet: nothing is deleted (365 archive(s) in the bucket)."


def test_deletes_go_in_bounded_batches(moto_server: MotoS3, s3_bucket: str, year: list[str]) -> None:
    with delivery(moto_server.url, s3_bucket) as target:
        batches: list[int] = []
        target.client.meta.events.register(
            "provide-client-params.s3.DeleteObjects",
            lambda params, **_: batches.append(len(params["Delete"]["Objects"])),
        )
        report = target.prune(RetentionPolicy(monthly=12), UTC, name_prefix=ALICE, verified=year, batch_size=100)
    assert len(report.deleted) == 353
    assert batches == [100, 100, 100, 53, 100, 100, 100, 53]  # the archives, then their manifests


def test_a_store_that_refuses_some_deletes_is_reported_not_fatal(
    fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str
) -> None:
    archives = a_year()[-10:]
    seed(moto_server, s3_bucket, archives)
    refused = archives[:2]
    errors = "".join(
        f"<Error><Key>{key}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" for key in refused
    )
    fault_proxy.add(
        Fault(
            status=200,
            body=f'<?xml version="1.0"?><DeleteResult>{errors}</DeleteResult>'.encode(),
            headers={"Content-Type": "application/xml"},
        ),
        when=lambda seen: seen.method == "POST" and "delete" in seen.query,
    )
    with delivery(fault_proxy.url, s3_bucket) as target:  # three to delete, two of them refused
        report = target.prune(RetentionPolicy(last=7), UTC, name_prefix=ALICE, verified=archives)
    assert report.deleted == (archives[2],)  # as the store answered (the proxy's answer stood in for moto's)
    assert [s.key for s in report.skipped] == refused[::-1]
    assert report.skipped[0].why == "the store refused: AccessDenied: Access Denied"
    assert "2 could not be deleted" in report.summary()
    assert bucket_keys(moto_server, s3_bucket) >= set(refused)


def test_deletes_every_route_refuses_are_reported_and_their_manifests_kept(
    fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str
) -> None:
    archives = a_year()[-4:]
    seed(moto_server, s3_bucket, archives)
    fault_proxy.add(
        s3_error(403, "AccessDenied", "Access Denied"),
        when=lambda seen: (seen.method == "POST" and "delete" in seen.query) or seen.method == "DELETE",
        times=None,
    )
    with delivery(fault_proxy.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=archives)
    assert report.deleted == () and len(report.skipped) == 3
    assert "Access denied for s3:DeleteObject" in report.skipped[0].why
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(archives) | set(FOREIGN)


@pytest.mark.parametrize(
    "refusal",
    [s3_error(501, "NotImplemented", "DeleteObjects is not supported"), s3_error(403, "AccessDenied", "Denied")],
    ids=["not-implemented", "denied-as-a-whole"],
)
def test_a_batch_refused_as_a_whole_is_tried_one_key_at_a_time(
    fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str, refusal: Fault
) -> None:
    archives = a_year()[-4:]
    seed(moto_server, s3_bucket, archives)
    fault_proxy.add(
        refusal,
        when=lambda seen: seen.method == "POST" and "delete" in seen.query,
        times=None,
    )
    with delivery(fault_proxy.url, s3_bucket) as target:
        report = target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=archives)
    assert len(report.deleted) == 3
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(archives[-1:]) | set(FOREIGN)


def test_a_listing_that_fails_raises_and_deletes_nothing(
    fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str
) -> None:
    archives = a_year()[-4:]
    seed(moto_server, s3_bucket, archives)
    fault_proxy.add(s3_error(403, "AccessDenied", "Access Denied"), when=lambda seen: seen.method == "GET")
    with delivery(fault_proxy.url, s3_bucket) as target, pytest.raises(DeliveryError) as caught:
        target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=archives)
    assert "s3:ListBucket" in caught.value.user_message
    assert bucket_keys(moto_server, s3_bucket) == with_manifests(archives) | set(FOREIGN)


def test_objects_under_object_lock_are_reported_and_skipped(moto_server: MotoS3, s3_locked_bucket: str) -> None:
    archives = a_year()[-5:]
    seed(moto_server, s3_locked_bucket, archives)
    client = moto_server.client()
    until = dt.datetime.now(UTC) + dt.timedelta(days=30)
    client.put_object_retention(
        Bucket=s3_locked_bucket, Key=archives[0], Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}
    )
    client.put_object_legal_hold(Bucket=s3_locked_bucket, Key=archives[1], LegalHold={"Status": "ON"})
    with delivery(moto_server.url, s3_locked_bucket) as target:
        report = target.prune(RetentionPolicy(last=1), UTC, name_prefix=ALICE, verified=archives)
    assert {s.key: s.why.split(" until ")[0] for s in report.skipped} == {
        archives[0]: "under S3 Object Lock",
        archives[1]: "under an S3 Object Lock legal hold",
    }
    assert sorted(report.deleted) == sorted(archives[2:4])
    # As the user asked, not a failure: said apart from refusals, and nothing needs a look.
    assert report.refused == () and "2 stay until their S3 Object Lock ends" in report.summary()
    # Skipped, not hidden behind a delete marker: the locked archives and their manifests are still listed.
    assert bucket_keys(moto_server, s3_locked_bucket) == with_manifests([archives[0], archives[1], archives[4]]) | set(
        FOREIGN
    )
