"""A SIGTERM at any moment of a `lifeboat` command: one line, a non-zero exit, nothing half-written.

Why: a user trial stopped `lifeboat export` within its first second, while it was
still importing Flask and loading the app, and the process ended with 143 and not
a word, because only the export's own body took SIGTERM. The console script now
takes it from its first moment (`errors.exit_on_signals_until_started`, then
`cli.LifeboatGroup.main` and every command's `stop_on_signals`). Real processes,
signalled from outside, as a service manager or `kill` does it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.commands import DEMO_EMAIL

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "lifeboat"
ALICE = ROOT / "tests" / "data" / "alice.json"


def _env(fresh_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "FLASK_"))} | fresh_env
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whichever checkout the script was installed from
    return env


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM yet (Linux: the SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _until(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]  # a callable
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.005)


def _stopped(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, (process.returncode, out, err)
    return out, err


def _half_written(*folders: Path) -> list[Path]:
    """Partial files a writer leaves while it works (`.partial-…`, temporary names)."""
    return [p for folder in folders if folder.exists() for p in folder.rglob(".*") if p.is_file()]


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _started(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`lifeboat ARGS` started, its output piped as text, for a test to stop while it runs."""
    return subprocess.Popen(
        [str(SCRIPT), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@dataclass(frozen=True)
class DemoInstance:
    """An instance folder holding the demo account, and how long exporting it takes here."""

    folder: Path
    took: float


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory: pytest.TempPathFactory) -> DemoInstance:
    """The demo account made and its export timed once for every moment below (each gets a copy).

    Why once: `lifeboat demo` and a timed export are most of each case's time, and they are the same
    for every moment; only the signalled export differs. Each case still signals an export of its
    own copy of the instance, with the item cache emptied, as the timed one ran.
    """
    base = tmp_path_factory.mktemp("demo")
    folder = base / "instance"
    env = _env({"FLASK_SKIP_DOTENV": "1", "LIFEBOAT_INSTANCE_DIR": str(folder)})
    assert _run(env, base, "demo").returncode == 0  # 1,000 events: an export of some seconds
    # Moments as shares of how long the same export takes here, from when it takes signals to its end:
    # fixed seconds fell after a fast machine's export had finished (CI, twice). Each export starts with
    # the item cache emptied (it is safe to delete at any time), so the one timed and the ones signalled
    # do the same work: a repeat reuses what the first cached (CI: 60% into a first export fell after a
    # repeat had done its work).
    shutil.rmtree(folder / "export-cache", ignore_errors=True)
    timed = _started(env, base, "export", DEMO_EMAIL, "--out", str(base / "timed"))
    _until(lambda: _catches_sigterm(timed.pid), "took SIGTERM")
    began = time.monotonic()
    assert timed.communicate(timeout=120) and timed.returncode == 0
    took = time.monotonic() - began
    shutil.rmtree(folder / "export-cache", ignore_errors=True)
    return DemoInstance(folder, took)


@pytest.mark.slow  # real processes: CI's whole suite, not test-fast
@pytest.mark.parametrize("share", [0.0, 0.2, 0.4, 0.6], ids=lambda s: f"{s:.0%} into it")
def test_a_sigterm_at_any_moment_of_an_export_says_stopped_in_one_line_and_leaves_nothing_half_written(
    fresh_env: dict[str, str], tmp_path: Path, share: float, demo_instance: DemoInstance
) -> None:
    env = _env(fresh_env)
    instance, out = Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]), tmp_path / "out"
    shutil.copytree(demo_instance.folder, instance)  # this case's own copy of the demo account
    took = demo_instance.took
    cache = instance / "export-cache"
    for attempt in range(3):  # a shared machine's load can fall between the timed run and this one
        shutil.rmtree(cache, ignore_errors=True)
        process = _started(env, tmp_path, "export", DEMO_EMAIL, "--out", str(out))
        _until(lambda pid=process.pid: _catches_sigterm(pid), "took SIGTERM")  # the earliest moment it can
        time.sleep(share * took * 0.7**attempt)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
            if process.returncode == 128 + signal.SIGTERM:
                break
            # Its work was done when the signal came: the process ends with its own status then, by design
            # (`errors.stop_on_signals`), so this moment too was too late.
            assert process.returncode == 0, (process.returncode, stdout, stderr)
        else:
            process.communicate(timeout=120)
        shutil.rmtree(out, ignore_errors=True)  # it finished: its archive goes, and the moment comes earlier
    else:
        pytest.fail("the export ended before the signal three times: this moment no longer falls inside it")
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()  # one line, and nothing printed before it
    assert line.startswith("Error: Stopped by SIGTERM"), line
    assert stdout == ""
    assert _half_written(instance, out) == []
    assert not out.exists() or list(out.iterdir()) == []
    again = _run(env, tmp_path, "export", DEMO_EMAIL, "--out", str(out))  # "run the same command again"
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("*.zip"))) == 1


@pytest.mark.slow
def test_a_sigterm_while_the_first_command_creates_the_instance_leaves_one_the_next_command_uses(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(fresh_env)
    instance = Path(fresh_env["LIFEBOAT_INSTANCE_DIR"])
    process = _started(env, tmp_path, "import-account", str(ALICE))
    _until(lambda: (instance / "lifeboat.sqlite3").exists(), "created its database")  # its schema being made
    _, stderr = _stopped(process)
    said = [line for line in stderr.splitlines() if not line.startswith("info: generated")]  # the new key's notice
    assert "Traceback" not in stderr and len(said) == 1, stderr
    assert said[0].startswith("Error: Stopped by SIGTERM"), stderr
    assert _half_written(instance) == []
    again = _run(env, tmp_path, "import-account", str(ALICE))
    assert again.returncode == 0, again.stderr
    assert "Imported alice@example.com" in again.stdout


@pytest.mark.slow
def test_a_sigterm_once_the_export_has_said_its_result_ends_it_with_its_status_or_one_line(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    # Its clean-up and the interpreter's shutdown follow the last line: Python's default SIGTERM made a
    # finished export exit 143 without a word. Now: its own status once it has returned, else one line.
    env = _env(fresh_env)
    instance, out = Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]), tmp_path / "out"
    assert _run(env, tmp_path, "import-account", str(ALICE)).returncode == 0
    process = _started(env, tmp_path, "export", "alice@example.com", "--out", str(out))
    assert process.stdout is not None
    said = [process.stdout.readline()]
    while "Not delivered" not in said[-1]:  # its last line
        said.append(process.stdout.readline())
        assert said[-1], said
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=120)[1]
    lines = [line for line in err.splitlines() if not line.startswith('{"at"')]
    assert "Traceback" not in err
    if process.returncode != 0:
        assert process.returncode == 128 + signal.SIGTERM and len(lines) == 1, err
        assert lines[0].startswith("Error: Stopped by SIGTERM"), err
    assert len(list(out.glob("*.zip"))) == 1 and _half_written(instance, out) == []


# After its last atexit step, Python gives signals their default action back; a SIGTERM in what is left of
# the shutdown (here: an object whose clean-up takes a second) killed a finished command (-15, once in CI).
_LATE_SHUTDOWN = """
import sys, time
import errors

class SlowToGo:
    def __del__(self):
        time.sleep(1.0)

kept = SlowToGo()
errors.exit_on_signals_when_done(3)
print("finished", flush=True)
sys.exit(3)
"""


@pytest.mark.slow
def test_a_sigterm_late_in_a_finished_commands_shutdown_leaves_its_own_status() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", _LATE_SHUTDOWN], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "finished\n"
    time.sleep(0.4)  # the interpreter is tearing its modules down, past its own signal handling
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3 and stderr == ""
