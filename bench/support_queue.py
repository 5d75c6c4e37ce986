"""Benchmark: the support queue on PostgreSQL with 100k users (issue 14).

Why: the queue is one statement over every user's runs and deliveries; it
must stay well under a second at 100k users. This makes a fresh database with
`--users` users on a weekly schedule, five delivered weekly runs each with a
delivery attempt and a fidelity drill, every 50th user's last run failed (so 2%
are in the queue twice: a failed delivery and a missed run) and every 100th
user's last drill found differences, then times each kind and the whole first
and second page.

    .venv/bin/python bench/support_queue.py [--users 100000]

Measured on the 2-core CI machine (PostgreSQL 15, 100k users, 500k runs and
attempts; the machine shared with other jobs): each kind 0.01 to 0.45 s, a page
of all kinds 0.4 to 0.6 s. Ranking every user's attempts and runs with window
functions instead took 9 s for the page, and with PostgreSQL's JIT on, this
query took 3 s (hence `SET LOCAL jit = off` in `jobs.support_queue`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import time

import psycopg
from psycopg import sql
from sqlalchemy import text

from jobs.support_queue import KINDS, queue
from store import Database, migrate

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def fill(database: Database, users: int) -> None:
    with database.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (id, email, timezone, is_active, is_support, created_at, session_version, role)"
                " SELECT g, 'u' || g || '@x.example', 'UTC', true, false, now() - interval '60 days', 0, 'user'"
                " FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )
        c.execute(
            text(
                "INSERT INTO schedules (user_id, frequency, time_of_day, weekday, day_of_month, timezone, enabled)"
                " SELECT g, 'weekly', '02:00', 0, 1, 'UTC', true FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )
        c.execute(
            text(
                "INSERT INTO export_runs (id, user_id, trigger, period_key, state, progress, attempt, max_attempts,"
                " not_before, created_at, finished_at)"
                " SELECT md5(g || '-' || w), g, 'schedule', 'w' || w,"
                " CASE WHEN g % 50 = 0 AND w = 4 THEN 'failed' ELSE 'delivered' END, 100, 1, 5,"
                " now() - ((5 - w) || ' weeks')::interval, now() - ((5 - w) || ' weeks')::interval,"
                " now() - ((5 - w) || ' weeks')::interval"
                " FROM generate_series(1, :n) g, generate_series(0, 4) w"
            ),
            {"n": users},
        )
        c.execute(
            text(
                "INSERT INTO delivery_attempts (run_id, at, outcome, message) SELECT id, finished_at,"
                " CASE WHEN state = 'failed' THEN 'permanent' ELSE 'delivered' END, 'm' FROM export_runs"
            )
        )
        # Every run's fidelity drill; every 100th user's newest found differences (the queue's drill_differences).
        c.execute(
            text(
                "INSERT INTO export_fidelity (run_id, items, differences, changes, detail, checked_at, method, skipped,"
                " difference_fields) SELECT id, 1300,"
                " CASE WHEN user_id % 100 = 0 AND period_key = 'w4' THEN 2 ELSE 0 END, 0, '{}', finished_at, 'memo',"
                " 1200, CASE WHEN user_id % 100 = 0 AND period_key = 'w4' THEN 'contact emails[0].value' END"
                " FROM export_runs"
            )
        )
        c.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    name = f"lifeboat_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        database = Database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        migrate.upgrade(database)
        fill(database, args.users)
        now = dt.datetime.now(dt.UTC)
        for kinds, offset in [((kind,), 0) for kind in KINDS] + [(KINDS, 0), (KINDS, 50)]:
            with database.session() as session:
                began = time.perf_counter()
                page = queue(session, now=now, kinds=kinds, offset=offset)
                took = time.perf_counter() - began
            label = kinds[0] if len(kinds) == 1 else f"all kinds, offset {offset}"
            print(f"{label:32} {page.total:>7} items  {took:.2f} s")
        database.dispose()
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
