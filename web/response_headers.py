"""Headers every response carries: no framing, no content sniffing, a careful Referer.

Why one hook for all: a page that forgets them is the one that gets framed
(user trial 7 found none at all; SameSite=Lax cookies stop most clickjacking
in current browsers, not in every one). `X-Frame-Options` is for browsers
that predate CSP's `frame-ancestors`; both say "never in a frame". A view
that sets its own value keeps it (the confirmation page's `no-referrer`), and
a Content-Security-Policy a view sets is extended, never duplicated: two
policies would both apply, and the stricter one would surprise its author.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

FRAME_ANCESTORS = "frame-ancestors 'none'"
DEFAULTS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-site pages may see where a visitor came from; other sites never see a path (a link token).
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    for name, value in DEFAULTS.items():
        response.headers.setdefault(name, value)
    policy = response.headers.get("Content-Security-Policy")
    if policy is None:
        response.headers["Content-Security-Policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in policy.lower():
        response.headers["Content-Security-Policy"] = f"{policy.rstrip().rstrip(';')}; {FRAME_ANCESTORS}"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
