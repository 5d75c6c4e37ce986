"""The second process of a two-process `check_archive`: `python -m exporters.archive.check_worker`.

Arguments: ARCHIVE INDEX COUNT CHUNK (its share and the calendar run length,
`exporters.archive.check`). It prints one JSON object: `{"partial": ...}` with
what its share found, or `{"invalid": message}` if the archive does not open.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from errors import InvalidInput
from exporters.archive.check import Share, check_share


def main(argv: list[str]) -> int:
    path, index, count, chunk = argv
    answer: dict[str, object]
    try:
        partial = check_share(Path(path), Share(int(index), int(count)), int(chunk))
    except InvalidInput as exc:
        answer = {"invalid": str(exc)}
    else:
        answer = {"partial": partial.to_json()}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
