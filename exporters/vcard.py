"""Write contacts as vCard 3.0 (default) or 4.0, one card per contact.

Why vobject builds the card but does not have the last word: it escapes text,
N, ADR and ORG correctly, but it only knows 3.0, folds by characters instead of
octets, never folds PHOTO and mangles the 4.0 `data:` PHOTO. So vobject
serializes without folding, values it gets wrong are handed to it already
encoded, and every logical line is folded again by `fold_line`.

Everything `exporters.vcard_read` needs to restore a record exactly is in the
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

import vobject
from vobject.base import ContentLine, backslashEscape

from account.records import Address, Blob, Contact, Name, Typed
from errors import InvalidInput
from exporters.folding import fold_line

VERSIONS = ("3.0", "4.0")
DERIVED_PARAM = "X-LIFEBOAT-DERIVED"
CREATED_PROPERTY = "X-LIFEBOAT-CREATED"
OMIT_YEAR_PARAM = "X-APPLE-OMIT-YEAR"
OMIT_YEAR = "1604"  # a leap year, so --02-29 survives; the year Apple uses

RESERVED_PROPERTIES: frozenset[str] = frozenset(
    {
        "BEGIN", "END", "VERSION", "UID", "FN", "N", "NICKNAME", "ORG", "TITLE", "ROLE",
        "EMAIL", "TEL", "ADR", "LABEL", "URL", "IMPP", "BDAY", "ANNIVERSARY", "X-ANNIVERSARY",
        "CATEGORIES", "NOTE", "PHOTO", "REV", CREATED_PROPERTY,
    }
)  # fmt: skip

_NO_FOLDING = 10**9  # vobject folds by characters: let it write whole lines, fold_line folds
_LINE_BREAKS = re.compile(r"\r\n?")
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_PROPERTY_NAME = re.compile(r"[A-Z0-9-]+")
_DATE = re.compile(r"(?:(\d{4})|-)-(\d{2})-(\d{2})")  # the year group is None in --MM-DD
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_OCTET_STREAM = "application/octet-stream"


def contact_to_vcard(contact: Contact, version: str = "3.0") -> bytes:
    """One complete card, BEGIN:VCARD to END:VCARD, CRLF line endings, folded at 75 octets."""
    _check_version(version)
    text = _build(contact, version).serialize(lineLength=_NO_FOLDING)
    return b"".join(fold_line(line) for line in text.removesuffix("\r\n").split("\r\n"))


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


def _build(contact: Contact, version: str) -> vobject.base.Component:
    card = vobject.vCard()
    _raw(card, "VERSION", version)  # vobject would only ever write 3.0
    _text(card, "UID", contact.uid)
    if contact.formatted_name is None:
        _text(card, "FN", derive_formatted_name(contact)).params[DERIVED_PARAM] = ["TRUE"]
    else:
        _text(card, "FN", contact.formatted_name)
    if contact.name is not None or version == "3.0":  # 3.0 requires N; all-empty reads as no name
        n = contact.name or Name()
        card.add("n").value = vobject.vcard.Name(
            family=_part(n.family),
            given=_part(n.given),
            additional=_part(n.additional),
            prefix=_part(n.prefix),
            suffix=_part(n.suffix),
        )
    for name, value in (
        ("NICKNAME", contact.nickname),
        ("TITLE", contact.title),
        ("ROLE", contact.role),
        ("NOTE", contact.note),
    ):
        if value is not None:
            _text(card, name, value)
    if contact.organization is not None or contact.department is not None:
        units = [_part(contact.organization)]
        if contact.department is not None:
            units.append(_part(contact.department))
        card.add("org").value = units  # a list: a plain string comes out as one unit per character
    for name, items in (("EMAIL", contact.emails), ("TEL", contact.phones)):
        for item in items:
            _typed(_text(card, name, item.value), item, version)
    for name, items in (("URL", contact.urls), ("IMPP", contact.impps)):
        for item in items:
            _typed(_raw(card, name, _uri(item.value)), item, version)
    for index, address in enumerate(contact.addresses, start=1):
        _address(card, address, version, f"item{index}")
    _date(card, "BDAY", contact.birthday, version)
    _date(card, "ANNIVERSARY" if version == "4.0" else "X-ANNIVERSARY", contact.anniversary, version)
    if contact.categories:
        _raw(card, "CATEGORIES", ",".join(backslashEscape(clean(c)) for c in contact.categories))
    if contact.photo is not None:
        _photo(card, contact.photo, version)
    for name, value in contact.extra.items():
        key = clean(name).strip().upper()
        if _PROPERTY_NAME.fullmatch(key) and key not in RESERVED_PROPERTIES:
            _raw(card, key, clean(value).replace("\n", "\\n"))  # verbatim: the importer checked it
    for name, stamp in ((CREATED_PROPERTY, contact.created), ("REV", contact.updated)):
        if stamp is not None and (value := _timestamp(stamp)) is not None:
            _raw(card, name, value)
    return card


def _part(value: str | None) -> str:
    """One component of N, ADR or ORG: vobject wants "" for an empty one."""
    return "" if value is None else clean(value)


def _text(card: vobject.base.Component, name: str, value: str) -> ContentLine:
    """A text property: vobject escapes backslash, comma, semicolon and newline."""
    line = card.add(name)
    line.value = clean(value)
    return line


def _raw(card: vobject.base.Component, name: str, value: str) -> ContentLine:
    """A property whose value is already in vCard syntax: vobject must not escape it again."""
    line = card.add(name)
    line.value = value
    line.encoded = True
    return line


def _uri(value: str) -> str:
    """A URI keeps its commas and semicolons (RFC 6350 3.4): escape only backslash and newline."""
    return clean(value).replace("\\", "\\\\").replace("\n", "\\n")


def _param(value: str) -> str:
    """A parameter value with RFC 6868 caret escapes: a quote or newline cannot end the value."""
    return clean(value).replace("^", "^^").replace("\n", "^n").replace('"', "^'")


def _typed(line: ContentLine, item: Typed | Address, version: str) -> None:
    types = [_param(t) for t in item.types if clean(t)]
    if item.preferred:
        if version == "4.0":
            line.params["PREF"] = ["1"]
        else:
            types.append("pref")
    if types:
        line.params["TYPE"] = types


def _address(card: vobject.base.Component, address: Address, version: str, group: str) -> None:
    grouped = version == "3.0" and bool(address.label)
    line = card.add("adr", group=group if grouped else None)
    line.value = vobject.vcard.Address(
        box=_part(address.po_box),
        extended=_part(address.extended),
        street=_part(address.street),
        city=_part(address.locality),
        region=_part(address.region),
        code=_part(address.postal_code),
        country=_part(address.country),
    )
    _typed(line, address, version)
    if not address.label:
        return
    if version == "4.0":
        line.params["LABEL"] = [_param(address.label)]
    else:
        label = card.add("label", group=group)
        label.value = clean(address.label)
        _typed(label, address, version)


def _date(card: vobject.base.Component, name: str, value: str | None, version: str) -> None:
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
        _raw(card, name, f"{year or '--'}{month}{day}")
    elif year is None:
        _raw(card, name, f"{OMIT_YEAR}-{month}-{day}").params[OMIT_YEAR_PARAM] = [OMIT_YEAR]
    else:
        _raw(card, name, f"{year}-{month}-{day}")


def _timestamp(value: dt.datetime) -> str | None:
    """UTC in basic ISO 8601 form, valid in both versions; a naive value is taken as UTC.

    None when the instant has no UTC form (an offset pushes it past year 1 or 9999).
    """
    try:
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError:
        return None
    return f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"


def _photo(card: vobject.base.Component, photo: Blob, version: str) -> None:
    media_type = clean(photo.media_type).strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        media_type = _OCTET_STREAM
    if version == "4.0":  # vobject mangles the data: URI, so hand it over finished
        data = base64.b64encode(photo.data).decode("ascii")
        _raw(card, "PHOTO", f"data:{media_type};base64,{data}")
        return
    line = card.add("photo")
    line.encoding_param = "b"  # vobject base64-encodes bytes itself when ENCODING=b
    kind, _, subtype = media_type.partition("/")
    line.type_param = _param(subtype.upper() if kind == "image" else media_type)
    line.value = photo.data
