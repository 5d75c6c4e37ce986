"""Where a sign-in may send the browser next: only back into this site.

Why normalise first: browsers do not read a `Location` the way Python string
checks do. The URL standard drops every tab, CR and LF anywhere in the value,
trims leading and trailing spaces and controls, and treats `\\` as `/`, so
`/\t/evil.example`, `/\\evil.example` and ` //evil.example` all send the
browser to another host although none of them starts with `//`. The check
therefore runs on the value as a browser would read it, and the value
returned is that normalised form, so what was checked is what is sent.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# WHATWG URL: "remove any leading and trailing C0 control or space", then "remove all
# ASCII tab or newline".
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_LIMIT = 2048


def safe_next(target: str | None) -> str | None:
    """Return `target` as a same-origin path to redirect to, or None if it is not one.

    Accepted: an absolute path (`/runs/abc?x=1#y`). Refused: anything a browser
    could read as another origin or a scheme (`//host`, `/\\host`, `http:`,
    `javascript:`), encoded forms of those slashes, control characters, and
    overly long values.
    """
    if not target or len(target) > _LIMIT:
        return None
    value = _TAB_OR_NEWLINE.sub("", target.strip(_C0_OR_SPACE))
    if not value.startswith("/") or not value.isprintable():
        return None
    # Backslashes are slashes to a browser; refusing them is simpler than rewriting them.
    if "\\" in value:
        return None
    # Decode repeatedly: a proxy or framework that decodes once more must not find `//` either.
    decoded = value
    for _ in range(3):
        decoded = unquote(decoded)
    if decoded.startswith(("//", "/\\")) or any(ord(c) < 0x20 or c == "\x7f" for c in decoded):
        return None
    parts = urlsplit(value)
    # Our own links never need `.` or `..` segments; refusing them keeps later path
    # normalisation (by a browser or a proxy) from producing a `//` the check never saw.
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return value
