"""The vCard writer as it was before `exporters.vcard.writer._Card`: an oracle for tests.

Why kept: `exporters.vcard.writer` now joins content lines itself for speed. This is the
previous writer, which built a `vobject.vCard` per contact and let vobject order,
escape and parameterise every property; the new writer must give the same bytes for
every contact (tests/formats/test_vcard_lines.py). Helpers the rewrite did not touch
(cleaning, URIs, parameter escapes, timestamps) are imported. Do not use outside tests.
"""

from __future__ import annotations

import base64
import datetime as dt

import vobject
from vobject.base import ContentLine, backslashEscape

from account.records import Address, Blob, Contact, Name, Typed
from account.reserved import CREATED_PROPERTY
from exporters.contentlines import fold_line
from exporters.vcard.writer import (
    _DATE,
    _MEDIA_TYPE,
    _OCTET_STREAM,
    _PROPERTY_NAME,
    DERIVED_PARAM,
    OMIT_YEAR,
    OMIT_YEAR_PARAM,
    RESERVED_PROPERTIES,
    _param,
    _timestamp,
    _uri,
    clean,
    derive_formatted_name,
)

_NO_FOLDING = 10**9  # vobject folds by characters: let it write whole lines, fold_line folds


def contact_to_vcard(contact: Contact, version: str = "3.0") -> bytes:
    text = _build(contact, version).serialize(lineLength=_NO_FOLDING)
    return b"".join(fold_line(line) for line in text.removesuffix("\r\n").split("\r\n"))


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
