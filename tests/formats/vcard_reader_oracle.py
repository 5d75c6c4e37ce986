"""The vCard reader as it was before its lean line reading: an oracle for tests.

Why kept: `exporters.vcard.reader` now cuts logical lines with one regular expression per
block, parses each distinct head (`TEL;TYPE=cell`) once and skips `canonical.text` for
cards without anything it changes. This is the previous reader, which unfolded a physical
line at a time and gave every line to vobject's `parseLine`; the new one must give the same
contacts and the same messages for every input (tests/formats/test_vcard_lean.py). Helpers
the rewrite did not touch (unescaping, splitting, parameters, dates, photos) are imported.
Do not use outside tests.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from dataclasses import replace

from vobject.base import ParseError, getLogicalLines, parseLine

from account import canonical
from account.records import Address, Contact, Name, Typed
from account.reserved import CREATED_PROPERTY
from errors import InvalidInput, not_utf8
from exporters.vcard.reader import (
    _CARD_MARK,
    _date,
    _derived_uid,
    _params,
    _photo,
    _Property,
    _split,
    _then_none,
    _timestamp,
    _unescape,
)
from exporters.vcard.writer import DERIVED_PARAM, RESERVED_PROPERTIES

_ADR_FIELDS = ("po_box", "extended", "street", "locality", "region", "postal_code", "country")
Numbered = list[tuple[str, int]]


def read_vcards(data: bytes) -> Iterator[Contact]:
    """Every card in a .vcf file, in order; raises `InvalidInput` for a file that is not vCard."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(not_utf8("the vCard file", exc.start)) from None
    for properties in _cards(text):
        yield _contact(properties)


def stream_vcards(chunks: Iterable[bytes]) -> Iterator[Contact]:
    """`read_vcards` for a file that arrives in pieces: memory is one card, however many there are.

    The text is cut into cards at END:VCARD lines (counting nested BEGIN:VCARD) and
    each card is read by the code `read_vcards` uses, so the contacts, checks and
    messages are the same; line numbers count from the start of the file.
    """
    for text, first_line, logical in _card_texts(chunks):
        if logical is None:  # a lone CR somewhere: vobject's own unfolding decides
            logical = [(line, at + first_line - 1) for line, at in getLogicalLines(io.StringIO(text), allowQP=False)]
        for properties in _cards_of(logical):
            yield _contact(properties)


def _card_texts(chunks: Iterable[bytes]) -> Iterator[tuple[str, int, Numbered | None]]:
    """Each card's text (with anything before it), the number vobject gives its first line, and its logical lines.

    vobject numbers a line 2 after a plain one and 1 more per fold (it counts the
    line end and the end of the text each logical line is), so messages name the
    line `read_vcards` names. The logical lines are unfolded here as vobject's
    `getLogicalLines` unfolds them (a line end and one space or tab go), because
    its regular expression walks every character of a 20 KiB photo: 47% of
    reading the cards (cProfile, 0.1x HEAVY address book). A card with a CR that
    ends no line (vobject takes it as a line end) gets None, and vobject's reading.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0  # bytes given to the decoder before the current chunk
    rest = ""
    card: list[str] = []
    logical: Numbered | None = []
    current: list[str] = []  # the logical line being unfolded
    start = first = number = 1
    depth = 0
    ended = False  # the last line ended the card, unless the next one continues it
    for chunk in _then_none(chunks):
        pending = len(decoder.getstate()[0])
        try:
            text = rest + (decoder.decode(chunk) if chunk is not None else decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            bom = 3 if offset == 0 and (chunk or b"").startswith(codecs.BOM_UTF8) else 0
            at = offset - pending + exc.start + bom
            raise InvalidInput(not_utf8("the vCard file", at)) from None
        offset += len(chunk or b"")
        lines = text.split("\n")
        rest = lines.pop() if chunk is not None else ""
        for line in lines:
            bare = line[:-1] if line.endswith("\r") else line
            if "\r" in bare:
                logical = None
            if line[:1] in (" ", "\t") and line:
                ended = False
                current.append(bare[1:])
            else:
                if current and logical is not None and (unfolded := "".join(current)):
                    logical.append((unfolded, start))
                if ended:
                    yield "".join(card), first, logical
                    card, logical, first = [], [], number
                    ended = False
                current, start = [bare], number
                mark = _CARD_MARK.match(bare)
                if mark is not None and mark.group(2).strip().upper() == "VCARD":
                    depth = depth + 1 if mark.group(1).upper() == "BEGIN" else max(depth - 1, 0)
                    ended = depth == 0
                number += 1  # a logical line starts here
            card.append(line + "\n")
            number += 1  # and a line ends
    if current and logical is not None and (unfolded := "".join(current)):
        logical.append((unfolded, start))
    if card:
        yield "".join(card), first, logical


def _cards(text: str) -> Iterator[list[_Property]]:
    return _cards_of(getLogicalLines(io.StringIO(text), allowQP=False))


def _cards_of(lines: Iterable[tuple[str, int]]) -> Iterator[list[_Property]]:
    """The cards in logical lines numbered as vobject numbers them."""
    card: list[_Property] | None = None
    nested = 0  # a vCard inside AGENT is part of its card, not a contact of its own
    for line, number in lines:
        try:
            name, params, value, group = parseLine(line, number)
        except ParseError:
            raise InvalidInput(f"line {number} is not a vCard property: {line[:60]!r}") from None
        name = name.upper()
        is_vcard = value.strip().upper() == "VCARD"
        if name == "BEGIN" and is_vcard:
            if card is None:
                card = []
            else:
                nested += 1
        elif card is None:
            raise InvalidInput(f"line {number}: {name} is outside BEGIN:VCARD … END:VCARD")
        elif name == "END" and is_vcard and nested:
            nested -= 1
        elif name == "END" and is_vcard:
            yield card
            card = None
        elif not nested:
            card.append(_Property(name, _params(params), value, group, None))
    if card is not None:
        raise InvalidInput("the last vCard has no END:VCARD: the file is cut short")


def _text(value: str) -> str | None:
    return canonical.optional_text(_unescape(value))


def _contact(properties: list[_Property]) -> Contact:
    by_name: dict[str, list[_Property]] = {}
    for prop in properties:
        by_name.setdefault(prop.name, []).append(prop)

    def first(name: str) -> _Property | None:
        return by_name.get(name, [None])[0]

    def text(name: str) -> str | None:
        prop = first(name)
        return None if prop is None else _text(prop.value)

    uid = text("UID") or _derived_uid(properties)
    fn = first("FN")
    org = _split(org_prop.value, ";") if (org_prop := first("ORG")) else [""]
    departments = [unit for unit in map(_text, org[1:]) if unit]
    anniversary = first("ANNIVERSARY") or first("X-ANNIVERSARY")
    extra: dict[str, str] = {}
    for prop in properties:
        if prop.name not in RESERVED_PROPERTIES:
            extra.setdefault(prop.name, canonical.text(prop.value))
    try:
        photo = next(filter(None, map(_photo, by_name.get("PHOTO", []))), None)
    except ValueError as exc:
        raise InvalidInput(f"vCard {uid!r}: {exc}") from None
    return Contact(
        uid=uid,
        formatted_name=None if fn is None or DERIVED_PARAM in fn.params else _text(fn.value),
        name=_name(first("N")),
        nickname=text("NICKNAME"),
        organization=_text(org[0]),
        department="; ".join(departments) or None,
        title=text("TITLE"),
        role=text("ROLE"),
        emails=tuple(map(_typed, by_name.get("EMAIL", []))),
        phones=tuple(map(_typed, by_name.get("TEL", []))),
        addresses=_addresses(by_name.get("ADR", []), by_name.get("LABEL", [])),
        urls=tuple(map(_typed, by_name.get("URL", []))),
        impps=tuple(map(_typed, by_name.get("IMPP", []))),
        birthday=_date(first("BDAY")),
        anniversary=_date(anniversary),
        categories=tuple(
            category
            for prop in by_name.get("CATEGORIES", [])
            for category in map(_text, _split(prop.value, ","))
            if category
        ),
        note=text("NOTE"),
        photo=photo,
        extra=extra,
        created=_timestamp(first(CREATED_PROPERTY)),
        updated=_timestamp(first("REV")),
    )


def _name(prop: _Property | None) -> Name | None:
    """N; an N with every component empty (3.0 requires one) means no name."""
    if prop is None:
        return None
    parts = [*map(_text, _split(prop.value, ";")), None, None, None, None, None][:5]
    if not any(parts):
        return None
    family, given, additional, prefix, suffix = parts
    return Name(family=family, given=given, additional=additional, prefix=prefix, suffix=suffix)


def _types(params: dict[str, list[str]]) -> tuple[tuple[str, ...], bool]:
    """TYPE values lower-cased and deduplicated in order; `pref` or PREF=1 means `preferred`."""
    preferred = any(value.strip() == "1" for value in params.get("PREF", []))
    kinds: list[str] = []
    for value in params.get("TYPE", []):
        for raw in value.split(","):  # TYPE="work,voice" (4.0) is the same as TYPE=work,voice
            kind = canonical.text(raw).strip().lower()
            if kind == "pref":
                preferred = True
            elif kind and kind not in kinds:
                kinds.append(kind)
    return tuple(kinds), preferred


def _typed(prop: _Property) -> Typed:
    types, preferred = _types(prop.params)
    return Typed(value=canonical.text(_unescape(prop.value)), types=types, preferred=preferred)


def _addresses(adrs: list[_Property], labels: list[_Property]) -> tuple[Address, ...]:
    """ADR with its label: the LABEL parameter (4.0), else the LABEL property of its group (3.0).

    An ungrouped LABEL goes to the first address with the same types that has
    no label yet; one that matches nothing is an address of its own.
    """
    addresses: list[Address] = []
    groups: dict[str, int] = {}
    for prop in adrs:
        parts = [*map(_text, _split(prop.value, ";")), *[None] * 7][:7]
        types, preferred = _types(prop.params)
        if prop.group:
            groups[prop.group.upper()] = len(addresses)
        addresses.append(
            Address(
                types=types,
                **dict(zip(_ADR_FIELDS, parts, strict=True)),
                label=canonical.optional_text(",".join(prop.params.get("LABEL", []))),
                preferred=preferred,
            )
        )
    for prop in labels:
        label = _text(prop.value)
        if label is None:
            continue
        types, preferred = _types(prop.params)
        if prop.group:
            index = groups.get(prop.group.upper())
        else:
            unlabelled = (i for i, a in enumerate(addresses) if a.label is None)
            index = next((i for i in unlabelled if set(addresses[i].types) == set(types)), None)
        if index is not None and addresses[index].label is None:
            addresses[index] = replace(addresses[index], label=label)
        else:
            addresses.append(Address(types=types, label=label, preferred=preferred))
    return tuple(addresses)
