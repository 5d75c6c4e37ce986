"""Benchmark: CPU of one typical export run as a worker executes it, first and repeat, two checkouts interleaved.

Why beside `bench/scheduler_scale.py`: that one gives exports per minute of whole
deployments (Celery, the embedded pool), whose wall time a shared 2-core machine
makes meaningless; this one gives the CPU of the run itself — claim, export,
verify-after-write, placement in the local archive store, the database writes —
per kind of run, for two checkouts measured in turns in one invocation, so a
change to the run's fixed costs shows up as a ratio under the same load.

Each round starts one process per checkout (in alternating order) that executes
`jobs.execute.execute_run` on one typical account (`account.sample.TYPICAL`:
200 contacts, 1,000 events, 100 notes) after two warm-up runs, `--runs` times
each kind:

- first: the user's export cache deleted before the run (a first export);
- repeat: exported just before, nothing changed (the steady state of periodic runs);
- 1% changed: every 100th contact, event and note edited since the last run
  (the account re-imported, as `import-account` does, alternating two versions).

CPU is the process's own (`time.process_time`) plus, on PostgreSQL, that of its
server backends (/proc, Linux only). The account and its database are made once
per checkout and database, in `--workdir`, and removed at the end.

    .venv/bin/python bench/typical_run_cpu.py --code /path/to/before --code . [--rounds 5] [--runs 4]
        [--databases sqlite,postgres] [--workdir /var/tmp/typical-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
KINDS = ("first", "repeat", "1% changed")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process `pid`; Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def child(code: Path, url: str, folder: Path, runs: int) -> dict[str, list[float]]:
    """In a process of its own: the CPU ms of `runs` runs of each kind of `code` against `url`."""
    sys.path.insert(0, str(code))
    import psycopg
    from sqlalchemy import text

    from account.sample import TYPICAL, generate_account
    from jobs import run_lifecycle
    from jobs.context import JobContext
    from jobs.execute import execute_run
    from store import Database, migrate
    from store.accounts import replace_account
    from store.base import utcnow

    sys.path.insert(0, str(HERE.parent))
    from export_repeat import edit_one_percent

    db = Database(url)
    original = generate_account("typical@bench.example", TYPICAL, seed=1)
    versions = [original, edit_one_percent(original)]
    marker = folder / "imported"
    if not marker.exists():
        migrate.upgrade(db)
        with db.session(write=True) as session:
            marker.write_text(str(replace_account(session, original).id))
    user_id = int(marker.read_text())
    ctx = JobContext(db=db, archive_dir=folder / "archives")
    postgres = not db.is_sqlite

    def backends() -> dict[int, float]:
        if not postgres:
            return {}
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_DSN.replace("dbname=postgres", f"dbname={name}"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchall()
        return {pid: _cpu_of(pid) for (pid,) in rows}

    def run_once() -> float:
        with db.session(write=True) as session:
            run, _ = run_lifecycle.request_run(session, user_id, "bench", now=utcnow())
            run_id = run.id
        before, cpu = backends(), time.process_time()
        outcome = execute_run(ctx, run_id, f"bench:{os.getpid()}")
        cpu = time.process_time() - cpu
        server = sum(value - before.get(pid, 0.0) for pid, value in backends().items())
        assert outcome == "delivered", outcome
        return (cpu + server) * 1000

    flip = 0

    def reimport() -> None:
        nonlocal flip
        flip = 1 - flip
        with db.session(write=True) as session:
            replace_account(session, versions[flip])

    for _ in range(2):  # warm-up: imports done, pools and caches filled, as in a long-running worker
        run_once()
    results: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(runs):
        shutil.rmtree(ctx.export_cache_dir, ignore_errors=True)
        results["first"].append(run_once())
        results["repeat"].append(run_once())
        reimport()
        results["1% changed"].append(run_once())
    with db.session(write=True) as session:  # keep the database small across rounds
        session.execute(text("DELETE FROM run_events"))
    db.dispose()
    return results


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", action="append", type=Path, help="a checkout to measure (give two to compare)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (one process per checkout each)")
    parser.add_argument("--runs", type=int, default=4, help="runs of each kind per round")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/lifeboat-typical-cpu"))
    parser.add_argument("--child", nargs=3, metavar=("CODE", "URL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, url, folder = args.child
        print(json.dumps(child(Path(code), url, Path(folder), args.runs)))
        return

    codes = [path.resolve() for path in (args.code or [HERE.parent.parent])]
    databases = [d for d in args.databases.split(",") if d]
    args.workdir.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    targets: dict[tuple[int, str], tuple[str, Path]] = {}
    import psycopg

    try:
        for i, _code in enumerate(codes):
            for database in databases:
                folder = args.workdir / f"code{i}-{database}"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                if database == "sqlite":
                    url = f"sqlite:///{folder}/lifeboat.sqlite3"
                else:
                    name = f"lifeboat_typical_{secrets.token_hex(4)}"
                    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                        admin.execute(f'CREATE DATABASE "{name}"')
                    made.append(name)
                    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
                targets[i, database] = (url, folder)
        results: dict[tuple[int, str, str], list[float]] = {}
        for round_ in range(args.rounds):
            order = list(range(len(codes)))
            if round_ % 2:
                order.reverse()
            for database in databases:
                for i in order:
                    url, folder = targets[i, database]
                    command = [sys.executable, str(HERE), "--runs", str(args.runs), "--child", str(codes[i]), url]
                    found = subprocess.run([*command, str(folder)], capture_output=True, text=True, check=False)
                    if found.returncode != 0:
                        raise SystemExit(f"{codes[i]} on {database} failed:\n{found.stderr[-3000:]}")
                    for kind, values in json.loads(found.stdout.strip().splitlines()[-1]).items():
                        results.setdefault((i, database, kind), []).extend(values)
            print(f"  round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(args.workdir, ignore_errors=True)

    print("\nCPU ms per typical export run (claim to delivered; PostgreSQL: + its backends), medians (min–max) of")
    print(f"{args.rounds} interleaved rounds x {args.runs} runs. Load average (1 min): {os.getloadavg()[0]:.1f}.")
    for i, code in enumerate(codes):
        print(f"  [{i}] {code}")
    header = ["database", "kind", *[f"[{i}] CPU ms" for i in range(len(codes))]]
    if len(codes) == 2:
        header.append("[1]/[0] (median of per-round ratios)")
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    for database in databases:
        for kind in KINDS:
            cells = [database, kind, *[spread(results[i, database, kind]) for i in range(len(codes))]]
            if len(codes) == 2:
                per = args.runs
                a, b = results[0, database, kind], results[1, database, kind]
                ratios = [
                    statistics.median(b[r * per : (r + 1) * per]) / statistics.median(a[r * per : (r + 1) * per])
                    for r in range(args.rounds)
                ]
                cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
