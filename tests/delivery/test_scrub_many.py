"""Scrub at scale: many users in a few buckets, each pass within its bounds, a killed pass resumed.

60 users' newest archives sit in 3 buckets on moto's real server. Each scrub
pass takes at most `LIMIT` destinations and `PER_BUCKET` of any one bucket; a
`lifeboat scrub` process killed (SIGKILL) in the middle of its pass loses
nothing: the destinations it finished keep their findings, the one it had
claimed falls due again after `CLAIM_HOLD`, and every destination ends with
exactly one check line in its run's history. `bench/scrub_scale.py` runs the
same at 1,000 users and prints the figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from delivery.s3.inspection import HEALTHY
from jobs import get_context
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.scrub import CLAIM_HOLD, LIMIT, PER_BUCKET, scrub
from store import Archive, Database, DeliveryAttempt, Destination, DestinationCheck, ExportRun, RunEvent, RunState, User
from tests.servers.s3 import MotoS3

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
USERS, BUCKETS = 60, 3


def seed_delivered(app: Flask, moto: MotoS3, users: int, buckets: list[str]) -> dict[int, str]:
    """`users` users, each with one S3 destination and one delivered archive in it; {destination id: bucket}.

    Rows are written directly (no export): scrub reads only the receipt, the
    archive's digest and the destination's settings, and the objects are real.
    """
    client = moto.client()
    registry = Registry(dict(app.config))
    where: dict[int, str] = {}
    made = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
    with get_context(app).db.session(write=True) as session:
        for n in range(users):
            bucket = buckets[n % len(buckets)]
            user = User(email=f"user{n:04d}@scrub.example")
            session.add(user)
            session.flush()
            settings = {
                "bucket": bucket,
                "endpoint_url": moto.url,
                "path_style": True,
                "access_key_id": "AKIALIFEBOATTEST0001",
                "secret_access_key": "secret-key-for-the-test",
            }
            destination = add_destination(session, registry, user, "s3", "bucket", settings)
            body = f"archive of user {n}".encode()
            key = f"2026/12/lifeboat-user{n:04d}-20261201T020000Z.zip"
            etag = client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
            digest = hashlib.sha256(body).hexdigest()
            archive = Archive(
                user_id=user.id, filename=key.rsplit("/", 1)[1], relpath=f"{user.id}/x.zip", sha256=digest,
                size=len(body), created_at=made, verified_at=made,
            )  # fmt: skip
            session.add(archive)
            session.flush()
            run = ExportRun(user_id=user.id, trigger="schedule", state=RunState.DELIVERED, archive_id=archive.id)
            session.add(run)
            session.flush()
            attempt = DeliveryAttempt(run_id=run.id, destination_id=destination.id, outcome="delivered", message="ok")
            attempt.at, attempt.object_key, attempt.etag, attempt.archive_sha256 = made, key, etag, digest
            session.add(attempt)
            where[destination.id] = bucket
    return where


def scrub_process(app: Flask) -> subprocess.Popen[str]:
    """`flask --app app scrub` in a process of its own, on the test's database, keys and endpoints."""
    env = {
        **os.environ,
        "LIFEBOAT_DATABASE_URL": app.config["DATABASE_URL"],
        "LIFEBOAT_ARCHIVE_DIR": app.config["ARCHIVE_DIR"],
        "LIFEBOAT_INSTANCE_DIR": app.instance_path,
        "LIFEBOAT_SECRET_KEY": app.config["SECRET_KEY"],
        "LIFEBOAT_ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
        "LIFEBOAT_ENDPOINT_ALLOW_LIST": ",".join(app.config["ENDPOINT_ALLOW_LIST"]),
        "PYTHONUNBUFFERED": "1",
    }
    flask = [sys.executable, "-m", "flask", "--app", "app", "scrub"]
    return subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).where(DestinationCheck.state != "checking")) or 0


def test_a_scrub_of_many_users_keeps_to_its_bounds_and_a_killed_pass_resumes_checking_each_once(
    bucket_app: Flask, moto_server: MotoS3
) -> None:
    buckets = [f"lifeboat-scrub-many-{n}-{os.getpid()}" for n in range(BUCKETS)]
    for bucket in buckets:
        moto_server.client().create_bucket(Bucket=bucket)
    where = seed_delivered(bucket_app, moto_server, USERS, buckets)
    ctx = get_context(bucket_app)

    killed = scrub_process(bucket_app)
    try:
        deadline = time.monotonic() + 60
        while finished(ctx.db) < 5:
            assert killed.poll() is None and time.monotonic() < deadline, killed.stdout and killed.stdout.read()
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.communicate(timeout=10)
    assert killed.returncode == -signal.SIGKILL
    with ctx.db.session() as session:
        rows = list(session.scalars(select(DestinationCheck)))
    first_pass = min(LIMIT, BUCKETS * PER_BUCKET)
    assert 5 <= len([r for r in rows if r.state != "checking"]) < first_pass, "the kill was meant to land mid-pass"
    # Claimed one at a time: at most the one it was checking when it died (none if it died between two).
    held = {r.destination_id for r in rows if r.state == "checking"}
    assert len(held) <= 1

    now = dt.datetime.now(dt.UTC)
    passes: list[list[int]] = []
    while found := scrub(ctx, now=now):
        passes.append([f.destination_id for f in found])
        assert all(f.state == HEALTHY for f in found)
    # What the dead process had claimed is nobody's until the claim's hold ends; then it is checked.
    assert not held & {d for ids in passes for d in ids}
    later = now + CLAIM_HOLD + dt.timedelta(minutes=1)
    while found := scrub(ctx, now=later):
        passes.append([f.destination_id for f in found])
    for ids in passes:
        assert len(ids) <= LIMIT and max(Counter(where[d] for d in ids).values()) <= PER_BUCKET
    assert len(passes) >= (USERS - first_pass) // (BUCKETS * PER_BUCKET)  # the bounds made it take several passes

    with ctx.db.session() as session:
        states = Counter(session.scalars(select(DestinationCheck.state)))
        lines = Counter(
            session.scalars(
                select(ExportRun.user_id)
                .join(RunEvent, RunEvent.run_id == ExportRun.id)
                .where(RunEvent.kind == "scrub")
            )
        )
        users = set(session.scalars(select(Destination.user_id)))
    assert states == {HEALTHY: USERS}
    assert set(lines) == users and set(lines.values()) == {1}  # each checked exactly once, the killed ones too
