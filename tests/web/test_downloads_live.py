"""Signed links against `lifeboat serve` on loopback, fetched by curl and checked by sha256sum.

Why real tools: a download manager's resume and a script's `sha256sum -c`
depend on details (Content-Range arithmetic, Content-Length on a sendfile'd
range, what `-C -` sends) that only the real programs exercise.

One server, one database and one archive serve the whole module (each test makes
its own links, and the one it revokes is its own): starting and stopping
`lifeboat serve` was most of each test's time. The xdist group keeps the tests
on one worker, so that one server is started once per run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from account.jsonio import account_from_dict
from store import Archive, Database, get_db
from store.accounts import replace_account
from tests.conftest import DATA, build_app
from tests.web.live_server import Served, serve
from tests.web.test_downloads import _export, _link

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
    pytest.mark.xdist_group("downloads_live"),
]


def _curl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--fail", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Flask]:
    app = build_app(tmp_path_factory.mktemp("live"), migrated_sqlite)
    yield app
    get_db(app).dispose()


@pytest.fixture(scope="module")
def archive(app: Flask) -> Archive:
    db = get_db(app)
    with db.session(write=True) as session:
        alice_id = replace_account(session, account_from_dict(json.loads((DATA / "alice.json").read_text("utf-8")))).id
    return _export(app, db, alice_id)


@pytest.fixture(scope="module")
def live(app: Flask, tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> Iterator[Served]:
    get_db(app).dispose()  # the server process opens the same SQLite file
    settings = {
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "DATABASE_URL": app.config["DATABASE_URL"],
        "ARCHIVE_DIR": app.config["ARCHIVE_DIR"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "EMBEDDED_WORKERS": "1",
    }
    with serve(settings, threads=4) as served:
        yield served


def test_curl_resumes_an_interrupted_download_with_range(
    app: Flask, db: Database, archive: Archive, live: Served, tmp_path: Path
) -> None:
    _, path = _link(app, db, archive)
    url = live.url + path
    stored = (Path(app.config["ARCHIVE_DIR"]) / archive.relpath).read_bytes()
    target = tmp_path / "download.zip"
    target.write_bytes(stored[: len(stored) // 3])  # what an interrupted download left
    resumed = _curl("-C", "-", "-o", str(target), "-D", "headers.txt", url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    headers = (tmp_path / "headers.txt").read_text()
    assert headers.startswith("HTTP/1.1 206")
    assert f"content-range: bytes {len(stored) // 3}-{len(stored) - 1}/{len(stored)}" in headers.lower()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == archive.sha256
    # Already complete: curl asks for the byte after the end, and takes the 416 as "done".
    again = subprocess.run(["curl", "-sS", "-C", "-", "-o", str(target), url], capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == archive.sha256


def test_curl_fetches_everything_headlessly_and_sha256sum_checks_it(
    app: Flask, db: Database, archive: Archive, live: Served, tmp_path: Path
) -> None:
    _, path = _link(app, db, archive)
    url = live.url + path
    assert _curl("-O", "-J", url, cwd=tmp_path).returncode == 0  # saved under the archive's own name
    assert _curl("-o", "SHA256SUMS", f"{url}/SHA256SUMS", cwd=tmp_path).returncode == 0
    listing = json.loads(_curl(f"{url}/parts", cwd=tmp_path).stdout)
    for part in listing["parts"]:
        fetched = _curl("--create-dirs", "-o", part["name"], part["url"], cwd=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{archive.filename}: OK" in checked.stdout
    assert checked.stdout.count(": OK") == len(listing["parts"]) + 1


def test_the_live_server_refuses_tampered_and_revoked_links(
    app: Flask, db: Database, archive: Archive, live: Served, tmp_path: Path
) -> None:
    from jobs.download_links import revoke_link
    from store.base import utcnow

    link_id, path = _link(app, db, archive)
    status = ["-o", "/dev/null", "-w", "%{http_code}"]
    tampered = subprocess.run(
        ["curl", "-sS", *status, live.url + path + "x"], capture_output=True, text=True, timeout=30, check=False
    )
    assert tampered.stdout == "403"
    with db.session(write=True) as session:
        assert revoke_link(session, link_id, archive.user_id, now=utcnow())
    get_db(app).dispose()
    revoked = subprocess.run(
        ["curl", "-sS", *status, live.url + path], capture_output=True, text=True, timeout=30, check=False
    )
    assert revoked.stdout == "410"


def test_the_scheduler_runs_once_in_the_one_worker(live: Served) -> None:
    """gunicorn's master only watches; the scheduler starts in its single worker, once."""
    assert len(live.worker_pids()) == 1
    started = [line for line in live.output if "embedded scheduler started" in line]
    assert len(started) == 1, live.output
