"""One size limit for every request body, refused with 413 before it is read.

Why: the web process also runs the scheduler and the exports, so a body held
in memory is memory they lose; a user trial sent a 300 MB JSON body with a
valid token and the worker grew by 850 MB and never gave it back. Flask's
`MAX_CONTENT_LENGTH` (set here from LIFEBOAT_MAX_REQUEST_BYTES) makes any read
of a longer body fail; the hook below answers a declared `Content-Length` over
the limit before any view, CSRF check or token lookup runs, so nothing is read
at all, and a chunked body past the limit with 413 too.

No route takes uploads (importing and restoring are `lifeboat` commands), so
one limit fits every route. A route that ever needs more must get its own,
explicit limit here (this hook runs first, for every route), not a higher
limit for all.
"""

from __future__ import annotations

import io

from flask import Flask, abort, current_app, request

from web.formatting import human_size


def limit() -> int:
    return int(current_app.config["MAX_REQUEST_BYTES"])  # also MAX_CONTENT_LENGTH: see `init_app`


def too_large_words() -> str:
    """What the 413 says, page and JSON alike: the limit, and that nothing was done."""
    return (
        f"The request was larger than the {human_size(limit())} Lifeboat accepts, so it was not read and "
        "nothing was changed. Send less at a time."
    )


def refuse_oversize() -> None:
    """A `Content-Length` over the limit: 413 at once, the body left unread; a longer chunked body: 413 too.

    Why chunked bodies are read here: without a length, werkzeug cuts the body
    off at the limit and hands the view the first part without a word, so an
    oversized JSON body came back as "Invalid JSON body" (400). Reading at most
    limit + 1 bytes tells the two apart; a body within the limit is handed on
    from memory.
    """
    length = request.content_length
    if length is not None:
        if length > limit():
            abort(413, too_large_words())
        return
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    source, data = request.environ["wsgi.input"], bytearray()
    while len(data) <= limit():
        chunk = source.read(limit() + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > limit():
        abort(413, too_large_words())
    request.environ["wsgi.input"] = io.BytesIO(bytes(data))  # still read to its end (wsgi.input_terminated)
    request.environ["wsgi.input_terminated"] = True


def init_app(app: Flask) -> None:
    """Set the limit and refuse oversized bodies first: register before any hook that reads the body."""
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_REQUEST_BYTES"])
    app.before_request(refuse_oversize)
