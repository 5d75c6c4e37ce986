"""Property values and bytes for the iCalendar writer, so that every reader gets them back.

Why not icalendar's own: icalendar 7 writes a literal backslash-N as a line break,
drops a leading U+FEFF, leaves a parameter with a TAB at its edge unquoted (its
lenient parser then strips it), accepts any text for enumerated properties (strict
parsers such as `ical` reject the file) and may fold a blank continuation line
(vobject drops it). Each helper here fixes one of those.
"""

from __future__ import annotations

import re

from icalendar import Component
from icalendar.parser import Parameters
from icalendar.prop import vCalAddress, vCategory, vText

from exporters.folding import fold_line
from exporters.ical_values import MARK, clean, mailto


def serialise(component: Component) -> bytes:
    """A component's bytes, folded by `exporters.folding` rather than by icalendar.

    Why: icalendar may leave a continuation line of only blanks (a long run of spaces
    in a description), which vobject, and so Radicale, drops as an empty line.
    """
    return b"".join(fold_line(str(line)) for line in component.content_lines() if line)


class QuotedParams(Parameters):
    # icalendar quotes CN only for a space or "'"; its lenient parser strips an unquoted
    # TAB at the edges, so quote CN always and the tokens when they hold odd characters.
    always_quoted = (*Parameters.always_quoted, "CN")
    quote_also = {"ROLE": " '\t\\", "PARTSTAT": " '\t\\"}


def address(email: str, params: dict[str, str]) -> vCalAddress:
    value = vCalAddress(mailto(email))
    value.params = QuotedParams(params)
    return value


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


def add_token(comp: Component, name: str, value: str) -> None:
    """An enumerated property; a value strict parsers would reject goes to X-LIFEBOAT-<name>."""
    valid = token(value, name)
    if valid:
        comp.add(name, valid)
    elif clean(value):
        comp.add(f"X-LIFEBOAT-{name}", text(value))


_BOM = "\ufeff".encode()


def escape_text(value: str) -> bytes:
    """RFC 5545 TEXT escaping of cleaned text (no CR left).

    Why not icalendar's: it first turns a literal backslash-N into a line break, so
    "C:\\New folder" would come back as two lines.
    """
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n").encode()


def _keep_bom(data: bytes) -> bytes:
    # icalendar decodes each written value as utf-8-sig, dropping one leading U+FEFF
    return _BOM + data if data.startswith(_BOM) else data


class Text(vText):
    def to_ical(self) -> bytes:
        return _keep_bom(escape_text(str(self)))


class Categories(vCategory):
    def to_ical(self) -> bytes:
        return _keep_bom(b",".join(escape_text(str(c)) for c in self.cats))


def text(value: str) -> vText:
    return Text(clean(value))


def marked() -> dict[str, str]:
    # a new dict each time: icalendar adds TZID/VALUE to the dict it is given
    return {MARK: "TRUE"}
