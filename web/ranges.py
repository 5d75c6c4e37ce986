"""Byte-range responses (RFC 9110 §14) for archives and their members, streamed in constant memory.

Why our own and not `send_file(conditional=True)`: werkzeug answers a range by
wrapping the file in an iterator that reads 8 KiB at a time, which takes the
server's `sendfile` away exactly when a download manager resumes. Here a range
of a real file is that file positioned at the range's first byte, wrapped in
the server's `wsgi.file_wrapper` with the range's `Content-Length`: gunicorn
then `sendfile`s exactly those bytes (PEP 3333: never more than Content-Length),
and any other server reads the bounded slice. Other bodies (a zip member, a
bucket relay) are generators asked for the range they need.

Choices: one range is answered 206; several ranges are answered 200 with the
whole body (RFC 9110 lets a server ignore Range; no download tool needs
multipart/byteranges); a range that starts past the end is 416 with
`Content-Range: bytes */size`; a suffix longer than the body means the whole
body. `If-Range` honours the range only for our strong ETag (the SHA-256) or
the exact Last-Modified date; `If-None-Match` with the ETag gives 304.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flask import request
from werkzeug.http import http_date, parse_date, parse_range_header
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

WRAPPER_BLOCK = 1 << 20  # what a server without sendfile reads at a time


@dataclass(frozen=True)
class Body:
    """What to send: `size` bytes whose SHA-256 is `sha256`, from a file or a range-taking generator."""

    size: int
    sha256: str
    mimetype: str
    filename: str | None = None  # set: served as an attachment under this name
    last_modified: dt.datetime | None = None
    path: Path | None = None  # a real file: sent with sendfile where the server can
    chunks: Callable[[int, int], Iterable[bytes]] | None = None  # (start, length) -> bytes, else
    # False: made afresh for this response (an archive sealed per download): no ranges, no ETag to match.
    resumable: bool = True


class _FileSlice:
    """`length` bytes of an open file from its current position: a file-like that keeps its `fileno`.

    gunicorn sends it with `sendfile` from the descriptor's position for the
    response's Content-Length; servers without sendfile read it, bounded.
    """

    def __init__(self, path: Path, start: int, length: int) -> None:
        # Closed by the server through close(), or here once the slice is read to its end.
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115
        self._file.seek(start)
        self._left = length

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            self.close()
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size) or b""
        self._left = self._left - len(data) if data else 0
        return data

    def close(self) -> None:
        self._file.close()


def _wanted_range(size: int, etag: str, last_modified: dt.datetime | None) -> tuple[int, int] | bool | None:
    """(start, length) for one satisfiable range; None: send it all; False: unsatisfiable (416)."""
    header = request.headers.get("Range")
    if not header or request.method not in ("GET", "HEAD"):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and not _if_range_holds(if_range, etag, last_modified):
        return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None  # unreadable, another unit, or several ranges: the whole body (200)
    first, end = parsed.ranges[0]
    if end is None and first < 0:  # suffix: the last -first bytes, all of it if longer
        first, end = max(0, size + first), size
    end = size if end is None else min(end, size)
    if first >= size or first >= end:
        return False
    return first, end - first


def _if_range_holds(value: str, etag: str, last_modified: dt.datetime | None) -> bool:
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == f'"{etag}"'  # strong comparison: a weak tag never matches
    when = parse_date(value)
    return when is not None and last_modified is not None and when == last_modified.replace(microsecond=0)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or f'"{etag}"' in tags


def send(body: Body) -> Response:
    """The response for `body` to the current request: 200, 206, 304 or 416, headers and streamed bytes."""
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{body.sha256}"', "Cache-Control": "private, no-store"}
    headers["X-Content-SHA256"] = body.sha256
    if body.last_modified is not None and body.resumable:
        headers["Last-Modified"] = http_date(body.last_modified)
    if body.filename is not None:
        headers["Content-Disposition"] = _attachment(body.filename)
    if not body.resumable:
        headers["Accept-Ranges"] = "none"
        del headers["ETag"]
    elif _matches(request.headers.get("If-None-Match"), body.sha256):
        return Response(status=304, headers=headers)
    wanted = _wanted_range(body.size, body.sha256, body.last_modified) if body.resumable else None
    if wanted is False:
        headers["Content-Range"] = f"bytes */{body.size}"
        return Response(status=416, headers=headers)
    start, length = wanted if isinstance(wanted, tuple) else (0, body.size)
    status = 206 if isinstance(wanted, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{body.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status=status, headers=headers, mimetype=body.mimetype)
    if body.path is not None:
        stream = wrap_file(request.environ, _FileSlice(body.path, start, length), WRAPPER_BLOCK)  # type: ignore[arg-type]
    else:
        assert body.chunks is not None
        stream = body.chunks(start, length)
    response = Response(stream, status=status, headers=headers, mimetype=body.mimetype, direct_passthrough=True)
    response.headers["Content-Length"] = str(length)
    return response


def _attachment(filename: str) -> str:
    """Content-Disposition for a download under `filename` (ASCII names as they are, others RFC 5987)."""
    if filename.isascii() and secure_filename(filename) == filename:
        return f"attachment; filename={filename}"
    return f"attachment; filename={secure_filename(filename) or 'download'}; filename*=UTF-8''{quote(filename)}"
