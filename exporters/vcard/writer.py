"""Write contacts as vCard 3.0 (default) or 4.0, one card per contact.

Why the lines are joined here and not by a `vobject.vCard`: vobject escapes text,
N, ADR and ORG correctly (its `backslashEscape` and `dquoteEscape` still do that
here), but it only knows 3.0, folds by characters instead of octets, never folds
PHOTO, mangles the 4.0 `data:` PHOTO, and building a component per contact cost
more than serialising it. So `_Card` orders the lines as vobject did and every
logical line is folded by `fold_line`.

Everything `exporters.vcard.reader` needs to restore a record exactly is in the
card, in forms other address books also understand:

- an FN made up because the contact has none carries `X-LIFEBOAT-DERIVED=TRUE`;
- a 3.0 card without a name still has the mandatory `N:;;;;` (read back as no name);
- a year-less date is `--MMDD` in 4.0 and Apple's `X-APPLE-OMIT-YEAR=1604` form in 3.0;
- the anniversary is ANNIVERSARY in 4.0 and X-ANNIVERSARY in 3.0;
- an address label is ADR's LABEL parameter in 4.0 and, in 3.0, a LABEL property
  in the same group as its ADR (`item1.ADR`, `item1.LABEL`);
- `created` is `X-LIFEBOAT-CREATED`, `updated` is REV (UTC, whole seconds).

Writers never crash on odd text: CR becomes a line break, other control
characters and lone surrogates are dropped, and only canonical records (see
`account.records`) are promised to come back equal.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterable, Iterator

from vobject.base import backslashEscape, dquoteEscape

from account.records import Address, Blob, Contact, Name, Typed
from account.reserved import CREATED_PROPERTY, RESERVED_VCARD_PROPERTIES
from errors import InvalidInput
from exporters.contentlines import ContentLines

VERSIONS = ("3.0", "4.0")
DERIVED_PARAM = "X-LIFEBOAT-DERIVED"
OMIT_YEAR_PARAM = "X-APPLE-OMIT-YEAR"
OMIT_YEAR = "1604"  # a leap year, so --02-29 survives; the year Apple uses

RESERVED_PROPERTIES = RESERVED_VCARD_PROPERTIES  # written by this module; `extra` may not repeat them

_LINE_BREAKS = re.compile(r"\r\n?")
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# What `clean` or vobject's `backslashEscape` would change (LF too); text without any passes as is.
_NOT_PLAIN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\\;,]")
_PROPERTY_NAME = re.compile(r"[A-Z0-9-]+")
_DATE = re.compile(r"(?:(\d{4})|-)-(\d{2})-(\d{2})")  # the year group is None in --MM-DD
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_OCTET_STREAM = "application/octet-stream"


def contact_to_vcard(contact: Contact, version: str = "3.0") -> bytes:
    """One complete card, BEGIN:VCARD to END:VCARD, CRLF line endings, folded at 75 octets."""
    _check_version(version)
    return _build(contact, version).to_bytes()


def iter_vcards(contacts: Iterable[Contact], version: str = "3.0") -> Iterator[bytes]:
    """One card per contact, so a whole address book streams into a file.

    The version is checked now, not at the first card, so a bad setting fails early.
    """
    _check_version(version)
    return (contact_to_vcard(contact, version) for contact in contacts)


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise InvalidInput(f"vCard version {version!r} is not supported: choose 3.0 or 4.0")


def clean(text: str) -> str:
    """Text every line can carry: CR and CRLF become LF, other controls and lone surrogates go."""
    return _UNWRITABLE.sub("", _LINE_BREAKS.sub("\n", text))


def derive_formatted_name(contact: Contact) -> str:
    """The FN a card needs when the contact has none: its name, else nickname, org, email, phone."""
    if contact.name is not None:
        n = contact.name
        joined = " ".join(p for p in (n.prefix, n.given, n.additional, n.family, n.suffix) if p)
        if joined:
            return joined
    candidates = [contact.nickname, contact.organization, contact.department]
    candidates += [t.value for t in contact.emails + contact.phones]
    return next((c for c in candidates if c), "")


class _Card(ContentLines):
    """A card's content lines in the order vobject serialises them: VERSION, UID, then by name.

    Why not a `vobject.vCard`: building one per contact and serialising it cost more
    than half of a contact's export (measured with `bench/export_account.py`), spent in
    vobject's attribute and behaviour machinery rather than in escaping. vobject still
    escapes every text and structured value (`backslashEscape`) and quotes parameter
    values (`dquoteEscape`); this class only joins `[group.]NAME;PARAMS:VALUE` and folds
    each line with `fold_line`. `tests/formats/test_vcard_lines.py` holds the bytes equal
    to what the vobject component wrote.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("VCARD", ("VERSION", "PRODID", "UID"))

    def add(self, name: str, value: str, params: dict[str, list[str]] | None = None, group: str | None = None) -> None:
        """Add a property whose value is already in vCard syntax (escaped by the caller)."""
        line = f"{group}.{name}" if group else name
        if params:
            line += "".join(f";{key}={','.join(dquoteEscape(p) for p in params[key])}" for key in sorted(params))
        self.add_line(name, f"{line}:{value}")


def _build(contact: Contact, version: str) -> _Card:
    card = _Card()
    card.add("VERSION", version)
    card.add("UID", _text(contact.uid))
    if contact.formatted_name is None:
        card.add("FN", _text(derive_formatted_name(contact)), {DERIVED_PARAM: ["TRUE"]})
    else:
        card.add("FN", _text(contact.formatted_name))
    if contact.name is not None or version == "3.0":  # 3.0 requires N; all-empty reads as no name
        n = contact.name or Name()
        card.add("N", _fields(n.family, n.given, n.additional, n.prefix, n.suffix))
    for name, value in (
        ("NICKNAME", contact.nickname),
        ("TITLE", contact.title),
        ("ROLE", contact.role),
        ("NOTE", contact.note),
    ):
        if value is not None:
            card.add(name, _text(value))
    if contact.organization is not None or contact.department is not None:
        units = [contact.organization] + ([contact.department] if contact.department is not None else [])
        card.add("ORG", _fields(*units))
    for name, items in (("EMAIL", contact.emails), ("TEL", contact.phones)):
        for item in items:
            card.add(name, _text(item.value), _typed(item, version))
    for name, items in (("URL", contact.urls), ("IMPP", contact.impps)):
        for item in items:
            card.add(name, _uri(item.value), _typed(item, version))
    for index, address in enumerate(contact.addresses, start=1):
        _address(card, address, version, f"item{index}")
    _date(card, "BDAY", contact.birthday, version)
    _date(card, "ANNIVERSARY" if version == "4.0" else "X-ANNIVERSARY", contact.anniversary, version)
    if contact.categories:
        card.add("CATEGORIES", ",".join(backslashEscape(clean(c)) for c in contact.categories))
    if contact.photo is not None:
        _photo(card, contact.photo, version)
    for name, value in contact.extra.items():
        key = clean(name).strip().upper()
        if _PROPERTY_NAME.fullmatch(key) and key not in RESERVED_PROPERTIES:
            card.add(key, clean(value).replace("\n", "\\n"))  # verbatim: the importer checked it
    for name, stamp in ((CREATED_PROPERTY, contact.created), ("REV", contact.updated)):
        if stamp is not None and (value := _timestamp(stamp)) is not None:
            card.add(name, value)
    return card


def _text(value: str) -> str:
    """A text value: backslash, comma, semicolon and newline escaped (by vobject).

    Most values (names, addresses, phone numbers) hold nothing to clean or escape:
    one regex scan returns them as they are instead of two substitutions and six
    replacements (part of a card's cost in a first export; see the commit).
    """
    if _NOT_PLAIN.search(value) is None:
        return value
    escaped: str = backslashEscape(clean(value))  # vobject has no types
    return escaped


def _fields(*parts: str | None) -> str:
    """N, ADR or ORG: each component escaped, joined by ';' (an absent one is empty)."""
    return ";".join("" if part is None else _text(part) for part in parts)


def _uri(value: str) -> str:
    """A URI keeps its commas and semicolons (RFC 6350 3.4): escape only backslash and newline."""
    return clean(value).replace("\\", "\\\\").replace("\n", "\\n")


def _param(value: str) -> str:
    """A parameter value with RFC 6868 caret escapes: a quote or newline cannot end the value."""
    return clean(value).replace("^", "^^").replace("\n", "^n").replace('"', "^'")


def _typed(item: Typed | Address, version: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    types = [_param(t) for t in item.types if clean(t)]
    if item.preferred:
        if version == "4.0":
            params["PREF"] = ["1"]
        else:
            types.append("pref")
    if types:
        params["TYPE"] = types
    return params


def _address(card: _Card, address: Address, version: str, group: str) -> None:
    grouped = version == "3.0" and bool(address.label)
    a = address
    value = _fields(a.po_box, a.extended, a.street, a.locality, a.region, a.postal_code, a.country)
    params = _typed(address, version)
    if address.label and version == "4.0":
        params["LABEL"] = [_param(address.label)]
    card.add("ADR", value, params, group=group if grouped else None)
    if address.label and version == "3.0":
        card.add("LABEL", _text(address.label), _typed(address, version), group=group)


def _date(card: _Card, name: str, value: str | None, version: str) -> None:
    """YYYY-MM-DD or --MM-DD; anything else cannot be a vCard date and is left out."""
    match = _DATE.fullmatch(value or "")
    if match is None:
        return
    year, month, day = match.groups()
    try:
        dt.date(int(year or 2000), int(month), int(day))  # 2000: a leap year, like 1604
    except ValueError:
        return
    if version == "4.0":
        card.add(name, f"{year or '--'}{month}{day}")
    elif year is None:
        card.add(name, f"{OMIT_YEAR}-{month}-{day}", {OMIT_YEAR_PARAM: [OMIT_YEAR]})
    else:
        card.add(name, f"{year}-{month}-{day}")


def _timestamp(value: dt.datetime) -> str | None:
    """UTC in basic ISO 8601 form, valid in both versions; a naive value is taken as UTC.

    None when the instant has no UTC form (an offset pushes it past year 1 or 9999).
    """
    try:
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError:
        return None
    return f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"


def _photo(card: _Card, photo: Blob, version: str) -> None:
    media_type = clean(photo.media_type).strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        media_type = _OCTET_STREAM
    data = base64.b64encode(photo.data).decode("ascii")
    if version == "4.0":
        card.add("PHOTO", f"data:{media_type};base64,{data}")
        return
    kind, _, subtype = media_type.partition("/")
    card.add("PHOTO", data, {"ENCODING": ["b"], "TYPE": [_param(subtype.upper() if kind == "image" else media_type)]})
