"""A stand-in for `exporters.archive.check_worker` that dies, for tests/formats/test_check_split.py.

`DYING_CHECK_WORKER` says how: `kill` (SIGKILL, as the kernel's out-of-memory
killer does), `raise` (an unexpected exception, with its traceback on stderr),
or `mute` (exits 0 without an answer).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    how = os.environ.get("DYING_CHECK_WORKER", "kill")
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "raise":
        raise RuntimeError("the parser met something it did not expect")
    sys.stdout.write("")


if __name__ == "__main__":
    main()
