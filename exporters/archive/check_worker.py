"""The second process of a two-process `check_archive`: `python -m exporters.archive.check_worker`.

Arguments: ARCHIVE INDEX COUNT CHUNK [PREFIX SNAPSHOT] (its share and the
calendar run length, `exporters.archive.check`; with a memo, the hex digest of
its stamp and the snapshot to look keys up in, `-` for none:
`exporters.archive.check_memo`). It prints one JSON object: `{"partial": ...}`
with what its share found (and, with a memo, the keys it looked up and
verified), `{"invalid": message}` if the archive does not open, or
`{"memo_unusable": message}` if the snapshot could not be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from errors import InvalidInput
from exporters.archive.check import check_share
from exporters.archive.check_memo import MemoUnusable, Verdicts
from exporters.archive.check_parts import Share


def main(argv: list[str]) -> int:
    path, index, count, chunk, *memo = argv
    verdicts = None
    if memo:
        prefix, source = memo
        verdicts = Verdicts(bytes.fromhex(prefix), None if source == "-" else Path(source))
    answer: dict[str, object]
    try:
        partial = check_share(Path(path), Share(int(index), int(count)), int(chunk), verdicts)
    except InvalidInput as exc:
        answer = {"invalid": str(exc)}
    except MemoUnusable as exc:
        answer = {"memo_unusable": str(exc)}
    else:
        if verdicts is not None:
            partial.memo = verdicts.to_json()
            verdicts.close()
        answer = {"partial": partial.to_json()}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
