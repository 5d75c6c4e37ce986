"""Engine and sessions, bound to the Flask app but usable without a request.

Why not Flask-SQLAlchemy: jobs and Celery workers run the same code outside a
request, so the store exposes a plain `Database` with a `session()` context
manager; the web layer gets one session per request through `get_session()`.

Why every session is either read-only or a writer from its first statement:
SQLite in WAL mode cannot turn a transaction that has read into a writer once
another connection has committed; it answers "database is locked" at once,
whatever busy_timeout says. A long export that read for a minute and then
inserted its archive row failed whenever anything else (another export, a
claim, a tick, its own heartbeat) committed meanwhile. So:

- `session()` is read-only: on SQLite its connection runs with
  `PRAGMA query_only`, on PostgreSQL in a READ ONLY transaction. A write there
  fails at once, in tests, instead of now and then in production.
- `session(write=True)` takes SQLite's write lock at `BEGIN IMMEDIATE` (waiting
  up to busy_timeout for it), so it never needs an upgrade. Keep these short:
  while one is open, every other writer waits. Long work (an export, a network
  call) reads in a read session and writes its outcome afterwards in a short
  write session of its own.

PostgreSQL keeps its own semantics (`FOR UPDATE SKIP LOCKED` claims); its
writers are ordinary READ COMMITTED transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from flask import Flask

# Flask is imported inside the functions that bind the database to an app: the processes that only
# use `Database` (a split export's calendar process, a restore's worker) start 0.2 s CPU sooner.

EXTENSION = "lifeboat.db"

# Execution option naming how a SQLite transaction begins: "read" (query_only), "write"
# (BEGIN IMMEDIATE); absent: a plain deferred transaction (migrations, admin tools).
_MODE = "lifeboat_mode"
# Connections SQLite keeps open for reuse (see make_engine); as many as `lifeboat serve`'s default threads.
SQLITE_POOL_SIZE = 32


class Database:
    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Unrestricted: migrations and tools that manage their own transactions.
        self.engine: Engine = make_engine(url, **engine_options)
        # Both share `engine`'s pool; only how their transactions begin differs.
        if self.is_sqlite:
            self.read_engine: Engine = self.engine.execution_options(**{_MODE: "read"})
            self.write_engine: Engine = self.engine.execution_options(**{_MODE: "write"})
        else:
            self.read_engine = self.engine.execution_options(postgresql_readonly=True)
            self.write_engine = self.engine
        self.sessionmaker = sessionmaker(self.read_engine, expire_on_commit=False)
        self.write_sessionmaker = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error.

        Read-only unless `write=True`. A writing transaction holds SQLite's only
        write lock from its start to its end: keep it to the writes and the reads
        they depend on, never a whole export or a network call.
        """
        maker = self.write_sessionmaker if write else self.sessionmaker
        with maker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {}).update({"timeout": 30, "check_same_thread": False})
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # Keep a connection for every thread that may read at once (`lifeboat serve
            # --threads`, default 32, plus the export pool and scheduler). With SQLAlchemy's
            # default (5 kept, 10 more opened and closed per checkout), 20 concurrent dashboard
            # requests opened a connection, ran four PRAGMAs and closed it on most requests
            # (py-spy on the gunicorn worker, bench/web_load.py). An idle SQLite connection
            # costs little memory; its page cache grows only with what it reads.
            options.setdefault("pool_size", SQLITE_POOL_SIZE)
            options.setdefault("max_overflow", SQLITE_POOL_SIZE)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_pre_ping", True)  # survive a database restart
    try:
        return create_engine(url, **options)
    except ImportError as exc:  # a URL for a database whose driver is not installed (mysql://, oracle://, ...)
        raise ArgumentError(
            f"its driver ({exc.name or exc}) is not installed; Lifeboat runs on sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Begin as the session's mode asks: read-only, a writer holding the lock, or plain."""
    mode = connection.get_execution_options().get(_MODE)
    query_only = mode == "read"
    # query_only is a flag of the pooled connection: set it only when it changes.
    if connection.info.get("query_only", False) != query_only:
        connection.exec_driver_sql(f"PRAGMA query_only = {int(query_only)}")
        connection.info["query_only"] = query_only
    connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "write" else "BEGIN")


def init_app(app: Flask) -> None:
    from flask import g

    database = Database(app.config["DATABASE_URL"])
    app.extensions[EXTENSION] = database

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_db(app: Flask | None = None) -> Database:
    from flask import current_app

    database: Database = (app or current_app).extensions[EXTENSION]  # set by init_app
    return database


def get_session() -> Session:
    """The request's read-only session (web layer only).

    A view that changes something does it in a short transaction of its own,
    `with get_db().session(write=True) as session:`, committed before it responds.
    """
    from flask import g

    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    session: Session = g.db_session
    return session


def get_fresh_session() -> Session:
    """The request's read session, made to see what this request has just written.

    Why: on SQLite (WAL) a read transaction reads one snapshot from its first
    query to its end, so a view that read (the signed-in user, a form's
    choices), wrote, then rendered from `get_session()` showed the page as it
    was before its own write (a token just made missing from the list beside
    it). Ending the read transaction makes the next read start afresh; objects
    it loaded reload on next use. For views that render after writing instead
    of redirecting (a secret shown once, a test result).
    """
    session = get_session()
    session.rollback()
    return session
