"""PostgreSQL, Redis and Celery for the scale-out tests (`pytest -m scale`).

Why real servers: the properties under test (two dispatchers racing on `FOR
UPDATE SKIP LOCKED`, `ON CONFLICT DO NOTHING` against a partial unique index,
a Celery task redelivered after its worker was killed, connections cut by the
database) do not exist on SQLite or in an in-memory broker.

Isolation: every test module gets a freshly created and migrated database
named `lifeboat_test_<random>` (dropped `WITH (FORCE)` afterwards) and an empty
Redis database index (flushed afterwards), so parallel runs never collide.
Every test starts from empty tables. When PostgreSQL or Redis is not
reachable the tests are skipped, or fail when `CI` is set: in CI a skipped
scale suite would look like a passing one.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis
from flask import Flask
from psycopg import sql
from sqlalchemy import insert, text

from app import create_app
from jobs.scheduler_loop import Dispatcher
from store import Base, Database, Schedule, User, get_db, migrate

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ADMIN_DSN = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres connect_timeout=3"
SECRET = "scale-test-secret-key"
# Servers on PostgreSQL refuse to start without LIFEBOAT_ENCRYPTION_KEYS (config.startup_refusal).
ENCRYPTION_KEY = "kZBxZJ7Ob6nL1qKP3zGJ4m0H0qFvUEZ5K9d1m2t3x4Y="
# Short enough for tests to see a dead worker's lease run out, long enough that a
# live worker on two busy cores always renews it (it beats every lease/4).
LEASE_SECONDS = 3
# Redis hands an unacknowledged task out again after this (the default is an hour).
VISIBILITY_TIMEOUT = 5
# A failed attempt is retried after this (then twice as long, ...); a minute in production.
RETRY_BASE_SECONDS = 1


def unavailable(message: str) -> NoReturn:
    """Skip locally, fail in CI: a scale suite that silently skips in CI proves nothing."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT} not reachable; start it or run in CI ({exc})")


@pytest.fixture(scope="module")
def pg_name() -> Iterator[str]:
    """A new, migrated PostgreSQL database for this test module; dropped afterwards."""
    name = f"lifeboat_test_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        database = Database(pg_url_for(name))
        migrate.upgrade(database)
        database.dispose()
        yield name
    finally:
        with _admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_url_for(name: str) -> str:
    return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"


@pytest.fixture(scope="module")
def pg_url(pg_name: str) -> str:
    return pg_url_for(pg_name)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """An empty Redis database index (1-15) for this module's broker; flushed afterwards."""
    try:
        probe = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0, socket_connect_timeout=3)
        probe.ping()
        probe.close()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT} not reachable; start it or run in CI ({exc})")
    indexes = list(range(1, 16))
    random.shuffle(indexes)
    for index in indexes:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=index)
        # Claim the index with a marker so a concurrent run picks another one.
        if client.dbsize() == 0 and client.set("lifeboat-test-owner", secrets.token_hex(8), nx=True):
            break
        client.close()
    else:
        pytest.fail("no empty Redis database index (1-15) left for this test run")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{index}"
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    """The module's database, emptied for this test (schema kept)."""
    database = Database(pg_url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        # Triggers off for this transaction only (a superuser's setting): the audit log refuses
        # TRUNCATE (migration 0011), and the tests start from empty tables.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
    database.dispose()


@pytest.fixture
def restart_postgresql() -> Callable[[], float]:
    """Restart the machine's PostgreSQL server for real (stop, start); returns the seconds it was down.

    Why besides `terminate_backends`: a restart also refuses new connections while the
    server is down and loses every prepared statement and lock, which no connection
    cut shows. It needs a local Debian cluster this process may control (root, with
    `pg_ctlcluster`), as on the CI machine; elsewhere the test is skipped, and in CI
    it fails instead. The server is up again before this returns.
    """
    clusters = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    if not clusters or os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        unavailable("restarting PostgreSQL needs root and a local Debian cluster (pg_ctlcluster)")
    version = clusters[0].parent.name

    def restart() -> float:
        began = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "--mode", "fast"],
            check=True,
            timeout=120,
            capture_output=True,
        )
        deadline = time.monotonic() + 60
        while subprocess.run(["pg_isready", "-q", "-h", PG_HOST, "-p", str(PG_PORT)]).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not come back within 60 s of its restart")
            time.sleep(0.2)
        return time.monotonic() - began

    return restart


@pytest.fixture
def terminate_backends(pg_name: str) -> Callable[[], int]:
    """Cut every connection to the test database, as a database restart would; returns how many.

    Only this test's own database is touched; the machine's PostgreSQL keeps running.
    """

    def terminate() -> int:
        with _admin() as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (pg_name,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    return terminate


def add_users(
    database: Database,
    count: int,
    *,
    zones: list[str],
    times: list[str],
    frequencies: list[str] | None = None,
) -> list[int]:
    """Insert `count` users, each with an enabled schedule (no next run time yet), in bulk.

    Zones, times and frequencies are dealt round-robin so every combination is exercised.
    """
    frequencies = frequencies or ["daily"]
    with database.session(write=True) as session:
        ids = list(
            session.scalars(
                insert(User).returning(User.id),
                [{"email": f"user{i:05d}@scale.example", "timezone": zones[i % len(zones)]} for i in range(count)],
            )
        )
        session.execute(
            insert(Schedule),
            [
                {
                    "user_id": user_id,
                    "frequency": frequencies[i % len(frequencies)],
                    "time_of_day": times[i % len(times)],
                    "timezone": zones[i % len(zones)],
                    "weekday": i % 7,
                    "day_of_month": 1 + i % 31,
                    "enabled": True,
                }
                for i, user_id in enumerate(ids)
            ],
        )
    return ids


@pytest.fixture
def scale_env(pg_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for subprocess workers and dispatchers: the test's database, broker and disk."""
    archive_dir = tmp_path / "archives"
    archive_dir.mkdir()
    return {
        "LIFEBOAT_DATABASE_URL": pg_url,
        "LIFEBOAT_ARCHIVE_DIR": str(archive_dir),
        "LIFEBOAT_CELERY_BROKER_URL": redis_url,
        "LIFEBOAT_SECRET_KEY": SECRET,
        "LIFEBOAT_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "LIFEBOAT_RUN_LEASE_SECONDS": str(LEASE_SECONDS),
        "LIFEBOAT_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "LIFEBOAT_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
    }


@pytest.fixture
def scale_app(pg_db: Database, scale_env: dict[str, str]) -> Iterator[Flask]:
    """This process's app on the test database and broker, configured like the workers.

    For the dispatcher (`jobs.scheduler_loop.Dispatcher`) and for sending tasks.
    """
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": scale_env["LIFEBOAT_DATABASE_URL"],
            "ARCHIVE_DIR": scale_env["LIFEBOAT_ARCHIVE_DIR"],
            "CELERY_BROKER_URL": scale_env["LIFEBOAT_CELERY_BROKER_URL"],
            "SECRET_KEY": SECRET,
            "ENCRYPTION_KEYS": [ENCRYPTION_KEY],
            "RUN_LEASE_SECONDS": LEASE_SECONDS,
            "CELERY_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT,
            "RETRY_BASE_SECONDS": RETRY_BASE_SECONDS,
        }
    )
    yield app
    app.extensions["celery"].close()
    get_db(app).dispose()


@dataclass
class Process:
    """A subprocess started by a test, with its combined output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up code runs, exactly like a lost machine."""
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def wait_for(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {marker!r} in {timeout} s:\n{self.output()}")
            time.sleep(0.05)


@pytest.fixture
def spawn_worker(scale_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start a real Celery worker process (`spawn_worker("w1", **extra_env)`), ready to consume.

    Every worker started is stopped at teardown, by its own pid only.
    """
    started: list[Process] = []

    def start(name: str, **extra_env: str) -> Process:
        command = [
            str(BIN / "celery"), "-A", "make_celery", "worker", "--pool=threads", "-c", "2",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
            "-n", f"{name}@%h",
        ]  # fmt: skip
        log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            **scale_env,
            **extra_env,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        with log.open("wb") as handle:
            popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        process = Process(name, popen, log)
        started.append(process)
        process.wait_for("ready.", timeout=60)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.terminate()
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until(
    condition: Callable[[], object], *, timeout: float, what: str, explain: Callable[[], str] | None = None
) -> None:
    """Poll `condition` until true; on timeout fail with `what`, and what `explain` says of the state then."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f":\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(0.1)


@contextmanager
def dispatcher_ticking(app: Flask, every: float = 0.5) -> Iterator[Dispatcher]:
    """The production dispatcher's tick (requeue dead runs, hand runs to Celery), in a thread."""
    dispatcher = Dispatcher(app)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            dispatcher._safe_tick()  # logs and survives a failed tick, like the service

    thread = threading.Thread(target=loop, name="dispatcher", daemon=True)
    thread.start()
    try:
        yield dispatcher
    finally:
        stop.set()
        thread.join(timeout=30)
