"""Benchmark: scrub of 1,000 users' delivered archives in 20 buckets on moto, pass by pass.

Why: issue 16 asks that scrub work be bounded per bucket and resumable at
1,000 users. This seeds that many users (rows written directly, real objects
in moto's threaded server on 127.0.0.1, the embedded SQLite default) and runs
scrub passes as housekeeping does (one every 10 minutes in `lifeboat serve`
and `lifeboat scheduler`), printing how many destinations each pass took, the
most of one bucket, the HTTP requests the store saw, and CPU and wall time per
destination checked. The kill-and-resume behaviour is tested in
tests/delivery/test_scrub_many.py (60 users, a real SIGKILL).

    .venv/bin/python bench/scrub_scale.py [--users 1000] [--buckets 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet
from moto.server import ThreadedMotoServer

import jobs
from app import create_app
from jobs import get_context
from jobs.scrub import LIMIT, PER_BUCKET, scrub
from store import get_db, migrate
from tests.delivery.test_scrub_many import seed_delivered
from tests.servers.s3 import MotoS3

HOUSEKEEPING_MINUTES = 10  # jobs/scheduler_loop.py and jobs/embedded.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--buckets", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = MotoS3(url=f"http://{host}:{port}", host=host, port=port)
    try:
        with tempfile.TemporaryDirectory() as folder:
            app = create_app(
                {
                    "INSTANCE_PATH": f"{folder}/instance",
                    "DATABASE_URL": f"sqlite:///{folder}/lifeboat.sqlite3",
                    "ARCHIVE_DIR": f"{folder}/archives",
                    "SECRET_KEY": "bench",
                    "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                    "ENDPOINT_ALLOW_LIST": ["127.0.0.0/8"],
                }
            )
            migrate.upgrade(get_db(app))
            jobs.init_app(app)
            run(app, moto, args.users, args.buckets)
            get_db(app).dispose()
    finally:
        server.stop()


def run(app: object, moto: MotoS3, users: int, buckets: int) -> None:
    names = [f"lifeboat-scrub-bench-{n}" for n in range(buckets)]
    for name in names:
        moto.client().create_bucket(Bucket=name)
    started = time.perf_counter()
    where = seed_delivered(app, moto, users, names)  # type: ignore[arg-type]
    print(f"seeded {users} users in {buckets} buckets in {time.perf_counter() - started:.1f} s")
    ctx = get_context(app)  # type: ignore[arg-type]
    now = dt.datetime.now(dt.UTC)
    sizes, per_bucket, cpu, wall = [], [], [], []
    while True:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        found = scrub(ctx, now=now)
        if not found:
            break
        cpu.append((time.process_time() - cpu0) / len(found))
        wall.append((time.perf_counter() - wall0) / len(found))
        sizes.append(len(found))
        per_bucket.append(max(Counter(where[f.destination_id] for f in found).values()))
        assert all(f.state == "healthy" for f in found), Counter(f.state for f in found)
    checked = sum(sizes)
    print(f"passes: {len(sizes)}; destinations checked: {checked} of {users}")
    print(
        f"per pass: at most {max(sizes)} (LIMIT {LIMIT}), "
        f"at most {max(per_bucket)} of one bucket (PER_BUCKET {PER_BUCKET})"
    )
    for name, series in (("CPU", cpu), ("wall", wall)):
        low, mid, high = (1000 * f(series) for f in (min, statistics.median, max))
        print(f"per destination, {name}: {mid:.1f} ms median of the passes (min {low:.1f}, max {high:.1f})")
    hours = len(sizes) * HOUSEKEEPING_MINUTES / 60
    print(
        f"at one pass per {HOUSEKEEPING_MINUTES} min: all {users} checked within {hours:.1f} h by one scheduler; "
        f"a bucket sees at most {PER_BUCKET} checks (5 requests each) per pass"
    )


if __name__ == "__main__":
    main()
