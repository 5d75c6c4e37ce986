"""Values and bytes for the parts of the iCalendar writer that go through `icalendar.Component`.

The calendar header is built as an icalendar component (once per calendar), VTIMEZONEs
by `exporters.ical_tz`; events are assembled by `exporters.ical_content`. Why not icalendar's own
text handling: icalendar 7 writes a literal backslash-N as a line break, drops a
leading U+FEFF, accepts any text for enumerated properties (strict parsers such as
`ical` reject the file) and may fold a blank continuation line (vobject drops it).
Each helper here fixes one of those.
"""

from __future__ import annotations

import re

from icalendar import Component
from icalendar.prop import vText

from exporters.folding import fold_line
from exporters.ical_content import Props, escape
from exporters.ical_values import clean


def serialise(component: Component) -> bytes:
    """A component's bytes, folded by `exporters.folding` rather than by icalendar.

    Why: icalendar may leave a continuation line of only blanks (a long run of spaces
    in a description), which vobject, and so Radicale, drops as an empty line.
    """
    return b"".join(fold_line(str(line)) for line in component.content_lines() if line)


def cn_params(name: str | None) -> dict[str, str]:
    return {"CN": clean(name)} if name and clean(name) else {}


# Values RFC 5545 allows for enumerated properties (`None`: any iana-token or x-name).
TOKENS: dict[str, frozenset[str] | None] = {
    "STATUS": frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"}),
    "TRANSP": frozenset({"OPAQUE", "TRANSPARENT"}),
    "ACTION": None,
}
_TOKEN_RE = re.compile(r"[A-Z0-9-]+")


def token(value: str, name: str) -> str | None:
    """The value as RFC 5545 writes it (upper case), or None if it is not a valid one."""
    upper = clean(value).strip().upper()
    allowed = TOKENS[name]
    valid = upper in allowed if allowed is not None else _TOKEN_RE.fullmatch(upper)
    return upper if valid else None


def add_token(comp: Props, name: str, value: str) -> None:
    """An enumerated property; a value strict parsers would reject goes to X-LIFEBOAT-<name>."""
    valid = token(value, name)
    if valid:
        comp.add(name, valid)
    elif clean(value):
        comp.add(f"X-LIFEBOAT-{name}", escape(clean(value)))


_BOM = "\ufeff".encode()


def escape_text(value: str) -> bytes:
    """RFC 5545 TEXT escaping of cleaned text (no CR left).

    Why not icalendar's: it first turns a literal backslash-N into a line break, so
    "C:\\New folder" would come back as two lines.
    """
    return escape(value).encode()


def _keep_bom(data: bytes) -> bytes:
    # icalendar decodes each written value as utf-8-sig, dropping one leading U+FEFF
    return _BOM + data if data.startswith(_BOM) else data


class Text(vText):
    def to_ical(self) -> bytes:
        return _keep_bom(escape_text(str(self)))


def text(value: str) -> vText:
    return Text(clean(value))
