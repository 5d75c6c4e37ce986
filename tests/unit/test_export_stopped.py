"""An export stopped half-way leaves no partial file: SIGTERM/SIGINT clean up at once, SIGKILL's at the next start.

Why: a user trial stopped `lifeboat export` and found `.partial` files of
archives in the instance folder and in --out until housekeeping's age limit
passed. A writer killed outright runs no clean-up; the lock it held on its
file (`store.archive_files.partial_file`) says it is gone, so the next export
or start-up removes the file, and never one whose writer is alive elsewhere.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from jobs import get_context
from jobs.embedded import EmbeddedRuntime
from jobs.housekeeping import remove_leftovers
from store import Database, ExportRun, RunState, User
from store.archive_files import remove_abandoned_partials
from store.base import utcnow

PartialWriter = Callable[[Path], tuple[subprocess.Popen[str], Path]]
each_stop_signal = pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)


class Escaped(Exception):
    """The signal reached the test's own handler: the command did not take it."""


@pytest.fixture
def alice_id(runner: FlaskCliRunner, db: Database) -> int:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    with db.session() as session:
        return session.query(User).filter_by(email="alice@example.com").one().id


@pytest.fixture
def signals_caught() -> Iterator[None]:
    """Should the command not take SIGTERM/SIGINT, fail the test rather than end the test process."""

    def escaped(signum: int, _frame: Any) -> None:
        raise Escaped(signal.Signals(signum).name)

    previous = {number: signal.signal(number, escaped) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


@pytest.fixture
def alice_archive(runner: FlaskCliRunner, alice_id: int, tmp_path: Path) -> str:
    """Alice's archive, exported into `tmp_path`: what the verify tests stop `verify` on."""
    exported = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path)])
    return exported.output.splitlines()[0]


def dot_files(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob(".*") if path.is_file()]


@each_stop_signal
@pytest.mark.parametrize("phase", ["archive", "copy"])
def test_an_export_stopped_by_a_signal_removes_its_partial_file_and_says_so_in_one_line(
    runner: FlaskCliRunner,
    archive_dir: Path,
    tmp_path: Path,
    alice_id: int,
    monkeypatch: pytest.MonkeyPatch,
    signals_caught: None,
    signum: int,
    phase: str,
) -> None:
    out = tmp_path / "out"
    seen: list[Path] = []

    def stop_here(real: Callable[..., Any]) -> Callable[..., Any]:
        def signalled(path: Path, *args: Any, **kwargs: Any) -> Any:
            seen.extend(dot_files(archive_dir, out))  # the partial file being written, at that moment
            os.kill(os.getpid(), signum)
            return real(path, *args, **kwargs)

        return signalled

    if phase == "archive":  # hashing the verified archive, before it is placed
        import store.archive_files

        monkeypatch.setattr(store.archive_files, "file_digest", stop_here(store.archive_files.file_digest))
    else:  # reading back the copy in --out
        import jobs.commands

        monkeypatch.setattr(jobs.commands, "verify_archive", stop_here(jobs.commands.verify_archive))
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(out)])
    name = signal.Signals(signum).name
    assert [p.name.split(".partial-")[1].split("-")[0] for p in seen] == [str(os.getpid())]  # its writer's pid
    assert result.exit_code == 128 + signum, result.output
    assert dot_files(archive_dir, out) == []
    if phase == "archive":
        assert result.output == (
            f"Error: Stopped by {name}; its unfinished files were removed. Run the same command again to finish.\n"
        )
        assert not list(archive_dir.glob("*/*.zip"))
    else:  # the archive was recorded before the copy: the line must not say everything was undone
        (kept,) = archive_dir.glob("*/*.zip")
        assert result.output == (
            f"Error: Stopped by {name} after the archive was made, read back and kept: {kept}; "
            f"the copy into {out} did not finish, its files removed.\n"
        )
        assert list(out.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the test's handler is back


@each_stop_signal
def test_a_verify_stopped_by_a_signal_says_it_changed_nothing_rather_than_that_files_were_removed(
    runner: FlaskCliRunner,
    alice_archive: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signals_caught: None,
    signum: int,
) -> None:
    import jobs.commands

    real = jobs.commands.check_archive

    def stopped_while_checking(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs.commands, "check_archive", stopped_while_checking)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(args=["verify", alice_archive])
    assert result.exit_code == 128 + signum, result.output
    assert result.output == (
        f"Error: Stopped by {signal.Signals(signum).name}; nothing was changed. "
        "Run the same command again to check the archive.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@each_stop_signal
def test_a_verify_stopped_while_its_app_loads_already_says_it_changed_nothing(
    runner: FlaskCliRunner,
    alice_archive: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signals_caught: None,
    signum: int,
) -> None:
    # `lifeboat verify` loads the app (`with_appcontext`) before its body runs: ~1 s of the trial's window.
    from flask.cli import ScriptInfo

    real = ScriptInfo.load_app

    def stopped_while_loading(self: ScriptInfo) -> Flask:
        os.kill(os.getpid(), signum)
        return real(self)

    monkeypatch.setattr(ScriptInfo, "load_app", stopped_while_loading)
    monkeypatch.setattr("flask.cli.current_app", None)  # as in a process of its own: no app until it loads
    result = runner.invoke(args=["verify", alice_archive, "--fresh"])
    assert result.exit_code == 128 + signum, result.output
    assert result.output == (
        f"Error: Stopped by {signal.Signals(signum).name}; nothing was changed. "
        "Run the same command again to check the archive.\n"
    )
    stopped_export = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path / "again")])
    assert "its unfinished files were removed" in stopped_export.output  # the export's words are its own


def test_the_next_export_removes_what_a_killed_export_left_but_not_what_a_live_one_writes(
    runner: FlaskCliRunner, archive_dir: Path, tmp_path: Path, alice_id: int, partial_writer: PartialWriter
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = archive_dir / str(alice_id)
    mine.mkdir(parents=True, exist_ok=True)
    killed, killed_file = partial_writer(mine / "01killed.zip")
    killed_copy_writer, killed_copy = partial_writer(out / "lifeboat-alice-killed.zip")
    live, live_file = partial_writer(mine / "01live.zip")  # another export, in another process, still writing
    live_copy_writer, live_copy = partial_writer(out / "lifeboat-alice-live.zip")
    for process in (killed, killed_copy_writer):
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert killed_file.exists() and killed_copy.exists()  # SIGKILL runs no clean-up
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not killed_file.exists() and not killed_copy.exists()
    assert live_file.exists() and live_copy.exists() and live.poll() is None and live_copy_writer.poll() is None
    live.kill()
    live.wait()
    assert remove_abandoned_partials(archive_dir) == 1 and not live_file.exists()


def test_housekeeping_keeps_an_old_partial_file_while_its_writer_lives(
    db: Database, archive_dir: Path, partial_writer: PartialWriter
) -> None:
    (archive_dir / "7").mkdir(parents=True)
    writer, partial = partial_writer(archive_dir / "7" / "01slow.zip")
    old = (utcnow() - dt.timedelta(days=1)).timestamp()
    os.utime(partial, (old, old))
    assert remove_leftovers(db, archive_dir, now=utcnow(), older_than=dt.timedelta(hours=1)) == 0
    assert partial.exists()
    writer.kill()
    writer.wait()
    assert remove_leftovers(db, archive_dir, now=utcnow(), older_than=dt.timedelta(hours=1)) == 1
    assert not partial.exists()


def test_the_service_start_up_removes_partial_files_of_killed_writers(
    app: Flask, archive_dir: Path, partial_writer: PartialWriter
) -> None:
    (archive_dir / "7").mkdir(parents=True)
    killed, left = partial_writer(archive_dir / "7" / "01killed.zip")
    live, kept = partial_writer(archive_dir / "7" / "01live.zip")
    killed.kill()
    killed.wait()
    runtime = EmbeddedRuntime(get_context(app), workers=1, tick_seconds=3600)
    runtime.start()
    try:
        assert not left.exists() and kept.exists()
    finally:
        runtime.shutdown()
    assert live.poll() is None


def test_a_delivering_export_stopped_by_sigterm_is_cancelled_so_running_it_again_is_not_refused(
    runner: FlaskCliRunner,
    db: Database,
    archive_dir: Path,
    alice_id: int,
    monkeypatch: pytest.MonkeyPatch,
    signals_caught: None,
) -> None:
    import store.archive_files

    real = store.archive_files.file_digest

    def signalled(path: Path) -> tuple[str, int]:
        monkeypatch.setattr(store.archive_files, "file_digest", real)  # once: the rerun goes through
        os.kill(os.getpid(), signal.SIGTERM)
        return real(path)

    monkeypatch.setattr(store.archive_files, "file_digest", signalled)
    stopped = runner.invoke(args=["export", "alice@example.com", "--deliver"])
    assert stopped.exit_code == 143 and "Error: Stopped by SIGTERM" in stopped.output, stopped.output
    assert "Traceback" not in stopped.output and dot_files(archive_dir) == []
    with db.session() as session:
        (run,) = session.query(ExportRun).filter_by(user_id=alice_id).all()
        assert run.state == RunState.CANCELLED and run.lease_owner is None
    again = runner.invoke(args=["export", "alice@example.com", "--deliver"])
    assert again.exit_code == 0, again.output
