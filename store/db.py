"""Engine and sessions, bound to the Flask app but usable without a request.

Why not Flask-SQLAlchemy: jobs and Celery workers run the same code outside a
request, so the store exposes a plain `Database` with a `session()` context
manager; the web layer gets one session per request through `get_session()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

EXTENSION = "lifeboat.db"


class Database:
    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: Engine = make_engine(url, **engine_options)
        # SQLite has no SELECT ... FOR UPDATE; read-modify-write transactions take the
        # write lock at BEGIN (IMMEDIATE) instead, on an engine of their own so long
        # read-only transactions (an export streaming rows) never block writers.
        self.write_engine: Engine = (
            make_engine(url, immediate=True, **engine_options) if self.is_sqlite else self.engine
        )
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessionmaker = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        `write=True` for transactions that read and then update the same rows.
        """
        maker = self.write_sessionmaker if write else self.sessionmaker
        with maker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def make_engine(url: str, *, immediate: bool = False, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {}).update({"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    options.setdefault("pool_pre_ping", True)  # survive a database restart
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def init_app(app: Flask) -> None:
    database = Database(app.config["DATABASE_URL"])
    app.extensions[EXTENSION] = database

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions[EXTENSION]


def get_session() -> Session:
    """The request's session (web layer only)."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session
