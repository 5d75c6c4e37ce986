"""Benchmark: the dashboard under concurrent clients, and a big archive through a signed link.

Why: issue 13 found werkzeug's development server behind `make run` saturating
near 160 requests/s (p95 149 ms at 20 clients) and downloading at 0.15x `cp`.
This measures what `lifeboat serve` (gunicorn, one worker of threads, sendfile)
gives, and by default the same against werkzeug's server for comparison.
Targets: dashboard p95 <= 100 ms at 20 concurrent clients; the archive at
>= 0.5x the throughput of `cp` of the same file; the server's RSS flat during
the stream.

Everything is on 127.0.0.1 and every loop is bounded. The servers run as
processes of their own (`lifeboat serve --port 0`, or werkzeug's threaded
server on the same app) on one database and archive folder made in a temporary
folder: Alice's account (tests/data/alice.json), one real export, and a
"big" archive row whose file is `--size-mb` MiB of incompressible bytes (the
download path serves the stored bytes and never parses them, so a real 500 MB
export would measure the same thing at ten minutes' cost). Rounds are
interleaved (werkzeug, gunicorn, werkzeug, ...) so a shared machine's load
falls on both; medians and min-max are printed.

    .venv/bin/python bench/web_load.py [--rounds 3] [--size-mb 512] [--requests 400] [--servers gunicorn,werkzeug]

`--servers` may also name `scaleout`: the web line of docs/deployment.md's scale-out table
(`gunicorn -k gthread --threads 32 -w 2 'app:create_app()'`, no scheduler), whose two worker
processes are not held to one core by the GIL as the embedded `lifeboat serve` is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.web.live_server import serve  # noqa: E402

EMAIL, PASSWORD, SECRET = "alice@example.com", "correct horse", "bench-secret-key"
WERKZEUG = (
    "import sys, logging\n"
    "from werkzeug.serving import make_server\n"
    "from app import create_app\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "server = make_server('127.0.0.1', 0, create_app(), threaded=True)\n"
    "print(f'Lifeboat on http://127.0.0.1:{server.socket.getsockname()[1]}/', flush=True)\n"
    "server.serve_forever()\n"
)


def prepare(folder: Path, size_mb: int) -> tuple[dict[str, str], str, Path]:
    """Database, archives and settings; returns the settings, the big archive's link path and file."""
    from account.jsonio import account_from_dict
    from app import create_app
    from jobs import get_context, run_lifecycle
    from jobs.execute import execute_run
    from store import Archive, get_db
    from store.accounts import replace_account
    from store.base import utcnow
    from store.passwords import hash_password
    from web.links import new_link_url

    settings = {
        "INSTANCE_DIR": str(folder / "instance"),
        "DATABASE_URL": f"sqlite:///{folder / 'lifeboat.sqlite3'}",
        "ARCHIVE_DIR": str(folder / "archives"),
        "SECRET_KEY": SECRET,
        "BASE_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app({**settings, "INSTANCE_PATH": settings["INSTANCE_DIR"], "TESTING": True})
    db = get_db(app)
    with db.session(write=True) as session:
        user = replace_account(
            session, account_from_dict(json.loads((ROOT / "tests" / "data" / "alice.json").read_text("utf-8")))
        )
        user.password_hash = hash_password(PASSWORD)
        user_id = user.id
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
    assert execute_run(get_context(app), run.id, "bench") == "delivered"
    big = Path(settings["ARCHIVE_DIR"]) / str(user_id) / "big.zip"
    block = os.urandom(16 << 20)
    with big.open("wb") as f:
        for index in range(size_mb // 16):
            f.write(block[index % 7 :] + block[: index % 7])  # no two blocks alike
    with db.session(write=True) as session:
        archive = Archive(
            user_id=user_id, filename="lifeboat-big.zip", relpath=f"{user_id}/big.zip", sha256="0" * 64,
            size=big.stat().st_size, created_at=utcnow(), verified_at=utcnow(),
        )  # fmt: skip
        session.add(archive)
        session.flush()
        url = new_link_url(app.config, session, archive.id, user_id)
    db.dispose()
    return settings, urllib.parse.urlsplit(url).path, big


@contextmanager
def werkzeug_server(settings: dict[str, str]) -> Iterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
    env.update({f"LIFEBOAT_{k}": v for k, v in settings.items()})
    process = subprocess.Popen([sys.executable, "-c", WERKZEUG], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if not match:
            raise RuntimeError(f"werkzeug server did not start: {line!r}")
        yield match.group(1), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@contextmanager
def scaleout_server(settings: dict[str, str], workers: int = 2) -> Iterator[tuple[str, list[int]]]:
    """gunicorn as docs/deployment.md's scale-out web line runs it; (base URL, worker pids)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
    env.update({f"LIFEBOAT_{k}": v for k, v in settings.items()})
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, not the editable install's
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-k", "gthread", "--threads", "32", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    process = subprocess.Popen([*command, "--log-level", "warning", "app:create_app()"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(children(process.pid)) < workers or not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn (scale-out) did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", children(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def running(kind: str, settings: dict[str, str]) -> Iterator[tuple[str, list[int]]]:
    """(base URL, the pids that serve: the first one's RSS is sampled, all count for CPU) for `kind`."""
    if kind == "werkzeug":
        with werkzeug_server(settings) as (url, pid):
            yield url, [pid]
    elif kind == "scaleout":
        with scaleout_server(settings) as (url, pids):
            yield url, pids
    else:
        with serve(settings) as served:
            yield served.url, served.worker_pids()


def sign_in(url: str) -> str:
    """The session cookie after signing in (CSRF token read from the form, as a browser would)."""
    host = urllib.parse.urlsplit(url).netloc
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("GET", "/login")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.read().decode())
    assert token, "no CSRF token on /login"
    body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)})
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/login", body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 302, answer.status
    conn.close()
    return answer.getheader("Set-Cookie", "").split(";", 1)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process `pid` has used so far (/proc/PID/stat), 0.0 if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dashboard(url: str, cookie: str, clients: int, total: int, pids: Sequence[int] = ()) -> dict[str, float]:
    """`total` GET / split over `clients` keep-alive connections at once; latency percentiles in ms.

    With the server's `pids`, also their CPU per request (ms): at 20 clients on two cores the
    queue, so this figure, sets p95.
    """
    host = urllib.parse.urlsplit(url).netloc
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def client(count: int) -> None:
        conn = http.client.HTTPConnection(host, timeout=60)
        mine: list[float] = []
        start_line.wait()
        for _ in range(count):
            began = time.perf_counter()
            try:
                conn.request("GET", "/", headers={"Cookie": cookie})
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    errors.append(str(answer.status))
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(host, timeout=60)
            mine.append((time.perf_counter() - began) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)

    cpu_before = sum(map(cpu_seconds, pids))
    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu_ms = (sum(map(cpu_seconds, pids)) - cpu_before) * 1000 / len(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "rps": len(latencies) / elapsed, "cpu_ms": cpu_ms, "errors": len(errors)}


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stream(url: str, link: str, pid: int, target: Path) -> dict[str, float]:
    """curl the big archive to a file, then to /dev/null; MB/s of each and the server's RSS (MiB, every 50 ms).

    Two figures because on this machine writing the received file is what
    limits curl (its 16 KiB writes), not the server: /dev/null shows what the
    server sends.
    """
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append(rss_kib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    figures: dict[str, float] = {}
    for name, out in (("mbps", str(target)), ("devnull_mbps", "/dev/null")):
        began = time.perf_counter()
        subprocess.run(["curl", "-sS", "--fail", "-o", out, url + link], check=True, timeout=600)
        figures[name] = (
            (target.stat().st_size if name == "mbps" else figures["size"]) / (time.perf_counter() - began) / 1e6
        )
        if name == "mbps":
            figures["size"] = target.stat().st_size
            target.unlink()
    done.set()
    sampler.join()
    del figures["size"]
    samples = [s for s in samples if s] or [0]
    return {**figures, "rss_min": min(samples) / 1024, "rss_max": max(samples) / 1024}


def copy(source: Path, target: Path) -> float:
    began = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True, timeout=600)
    elapsed = time.perf_counter() - began
    target.unlink()
    return source.stat().st_size / elapsed / 1e6


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--requests", type=int, default=400, help="dashboard requests per measurement")
    parser.add_argument("--servers", default="gunicorn,werkzeug")
    args = parser.parse_args()
    kinds = args.servers.split(",")
    results: dict[str, dict[str, list[float]]] = {k: {} for k in [*kinds, "cp"]}

    def note(kind: str, name: str, value: float) -> None:
        results[kind].setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory(prefix="lifeboat-web-bench-") as tmp:
        folder = Path(tmp)
        settings, link, big = prepare(folder, args.size_mb)
        print(f"prepared {big.stat().st_size / 2**20:.0f} MiB archive; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
        for round_number in range(args.rounds):
            note("cp", "mbps", copy(big, folder / "copy.bin"))
            for kind in kinds:
                with running(kind, settings) as (url, pids):
                    cookie = sign_in(url)
                    dashboard(url, cookie, 4, 40)  # warm-up: templates, connection pool
                    for clients in (1, 20):
                        figures = dashboard(url, cookie, clients, args.requests, pids)
                        for name, value in figures.items():
                            note(kind, f"{name}@{clients}", value)
                    for name, value in stream(url, link, pids[0], folder / "download.bin").items():
                        note(kind, name, value)
            print(
                f"round {round_number + 1}: "
                + json.dumps({k: {n: v[-1] for n, v in r.items()} for k, r in results.items()})
            )
    print(f"\nmedian (min-max) of {args.rounds} interleaved rounds; {args.requests} dashboard requests per figure")
    print(f"{'cp':10} MB/s {summary(results['cp']['mbps'])}")
    for kind in kinds:
        r = results[kind]
        print(f"\n{kind}")
        for clients in (1, 20):
            p50, p95, rps, cpu = (summary(r[f"{name}@{clients}"]) for name in ("p50", "p95", "rps", "cpu_ms"))
            errors = sum(r[f"errors@{clients}"])
            print(
                f"  dashboard {clients:2} clients  p50 ms {p50}   p95 ms {p95}   req/s {rps}"
                f"   server CPU ms/request {cpu}   errors {errors:.0f}"
            )
        ratios = [m / c for m, c in zip(r["mbps"], results["cp"]["mbps"], strict=True)]
        print(f"  archive to a file  MB/s {summary(r['mbps'])}   vs cp (same round) {summary(ratios)}x")
        null = [m / c for m, c in zip(r["devnull_mbps"], results["cp"]["mbps"], strict=True)]
        print(f"  archive to /dev/null MB/s {summary(r['devnull_mbps'])}   vs cp (same round) {summary(null)}x")
        print(f"  server RSS during the stream MiB: min {summary(r['rss_min'])}  max {summary(r['rss_max'])}")


if __name__ == "__main__":
    main()
