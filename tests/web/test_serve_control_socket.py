"""`lifeboat serve` opens no gunicorn control socket (user trial 9, finding 12).

Why: gunicorn 25+ listens on a control socket at one path per OS user
($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), which every instance, Lifeboat's
or not, run by that user would share. Lifeboat uses none of its commands: the
operator stops `serve` with a signal.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.web.live_server import serve


def _unix_socket_paths(pids: list[int]) -> set[str]:
    """The paths of the Unix sockets these processes hold open (from /proc: their fds and the socket table)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    rows = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:]]
    return {row[7] for row in rows if len(row) > 7 and row[6] in inodes}


@pytest.mark.server
def test_serve_opens_no_control_socket_shared_by_every_instance_of_the_user(tmp_path: Path) -> None:
    with serve({"INSTANCE_DIR": str(tmp_path / "instance"), "EMBEDDED_WORKERS": "1"}, threads=2) as served:
        paths = _unix_socket_paths([served.process.pid, *served.worker_pids()])
        output = "".join(served.output)
    assert not any(path.endswith("gunicorn.ctl") for path in paths), paths
    assert "Control socket" not in output, output
