"""Read vCards (3.0 and 4.0) back into canonical `Contact` records.

Why vobject only splits the lines: its tokenizer (unfolding, group, name,
parameters, raw value) is sound, but its value decoding is not lossless: it
unescapes X- values that must stay verbatim and keeps only the text before an
unescaped comma.
So values are unescaped here, once, with the rules `exporters.vcard.writer` writes by,
and other producers' habits (2.1-style bare TYPE values, TYPE=pref, PREF=n,
ungrouped LABEL, basic or extended dates, Apple's omitted year) are accepted too.

What a record cannot hold is left out rather than guessed: a PHOTO that is a
link, a date that is free text, the second of a single-valued property (FN,
NOTE, BDAY...), parameters, groups and repeats of an unknown property (`extra`
keeps the first value by name; `stream_vcards` can say what it left out).

Why the reading takes shortcuts: every export's fidelity drill reads all its
cards back (issue 16), and reading 1x HEAVY's address book went to unfolding
photos a physical line at a time, to vobject's `parseLine` for every line and
to `canonical.text` for every value. Each shortcut gives what the long way gives
or steps aside for it: blocks of uniformly ended lines are cut into logical
lines by one regular expression (`_card_texts`), each distinct head is parsed
once (`_HEADS`), and a card without anything `canonical.text` changes skips it
(`_contact`). `bench/vcard_read.py --code /work/main --code . --rounds 15` (1x HEAVY, 10,000
cards, vCard 3.0, interleaved rounds, CPU): 1.94x (1.38-3.07) read a piece per
card as the drill reads them, 1.98x (1.65-2.27) in 64 KiB pieces. The reader
before them is kept as tests/formats/vcard_reader_oracle.py, and
tests/formats/test_vcard_lean.py holds the two equal on our writer's cards and
on hostile ones.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import io
import re
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from operator import itemgetter
from typing import NamedTuple

from vobject.base import ParseError, getLogicalLines, parseLine

from account import canonical
from account.records import Address, Blob, Contact, Name, Typed
from account.reserved import CREATED_PROPERTY
from errors import InvalidInput, not_utf8
from exporters.vcard.writer import DERIVED_PARAM, OMIT_YEAR_PARAM, RESERVED_PROPERTIES

_ESCAPED = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", "n": "\n", "N": "\n", ",": ",", ";": ";", ":": ":"}
_CARETS = re.compile(r"\^([\^nN'])")
_UNCARET = {"^": "^", "n": "\n", "N": "\n", "'": '"'}
_BARE_ENCODINGS = frozenset({"B", "BASE64"})
_UID_NAMESPACE = uuid.UUID("6b3b2a1e-3c55-4a1f-9d0e-6c1f0a4f7c21")
# What `canonical.text` changes: NUL, CR and the other controls it drops, lone surrogates.
_UNCANONICAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class _Property(NamedTuple):
    name: str
    params: dict[str, list[str]]  # shared by the properties of one head: never changed
    value: str  # raw: still escaped
    group: str | None
    head: str | None  # its line before the first colon, when `_HEADS` parsed it


_new_property = tuple.__new__  # a `_Property` from a tuple without NamedTuple's Python-level __new__


def read_vcards(data: bytes) -> Iterator[Contact]:
    """Every card in a .vcf file, in order; raises `InvalidInput` for a file that is not vCard."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(not_utf8("the vCard file", exc.start)) from None
    for properties in _cards(text):
        yield _contact(properties)


def parse_vcard(text: str) -> Contact:
    """The one card in `text`; `InvalidInput` if there is none or more than one."""
    contacts = [_contact(properties) for properties in _cards(text)]
    if len(contacts) != 1:
        raise InvalidInput(f"expected one vCard, found {len(contacts)}")
    return contacts[0]


# Told what a card holds that its `Contact` does not keep (`stream_vcards`' `unread`): its UID, and what.
Unread = Callable[[str, list[str]], None]


def stream_vcards(chunks: Iterable[bytes], *, unread: Unread | None = None) -> Iterator[Contact]:
    """`read_vcards` for a file that arrives in pieces: memory is one card, however many there are.

    The text is cut into cards at END:VCARD lines (counting nested BEGIN:VCARD) and
    each card is read by the code `read_vcards` uses, so the contacts, checks and
    messages are the same; line numbers count from the start of the file.

    `unread`, if given, is told what of a card's other properties `extra` could not
    keep (`extra_losses`): a restore says what it left out.
    """
    for text, first_line, logical in _card_texts(chunks):
        if logical is None:  # a lone CR somewhere: vobject's own unfolding decides
            logical = [(line, at + first_line - 1) for line, at in getLogicalLines(io.StringIO(text), allowQP=False)]
        for properties in _cards_of(logical):
            contact = _contact(properties)
            if unread is not None and contact.extra and (lost := extra_losses(properties)):  # no extra, no loss
                unread(contact.uid, lost)
            yield contact


def read_card(data: bytes) -> Contact | None:
    """One card as our writer lays it out (its bytes, CRLF lines) read straight from them, or None.

    Why: the fidelity drill reads every card of a first export back, and cutting
    them out of a stream (`_card_texts`: decoding piece by piece, numbering lines
    for messages, watching for BEGIN and END in any form) was about half of
    reading a card. A card alone is one block: unfold it as vobject does (a line
    end and one space or tab go), split it at its CRLFs and give its properties,
    cut as `_cards_of` cuts them, to `_contact`. None for bytes that are not
    UTF-8, a lone CR or LF, a blank line, a first or last line
    that is not BEGIN:VCARD or END:VCARD, a BEGIN or END between them, a head
    `_cards_of` parses with its line (a quote) or vobject refuses, and a card
    `_contact` refuses: the caller reads those as a stream, which says what is
    wrong (`exporters.archive.drill_memo.cards_read_back`). Messages are all
    that line numbers change, and no card read here has one.
    tests/formats/test_vcard_lean.py holds it equal to the stream, card by card.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    if "\r\n " in text:  # folded (a photo, a long note): joined as vobject joins them, a line end and a space
        text = text.replace("\r\n ", "")
    if "\r\n\t" in text:  # ... or a tab; with no lone CR or LF (below), in this order is the same
        text = text.replace("\r\n\t", "")
    lines = text.split("\r\n")
    if lines.pop() or "" in lines:
        return None
    joined = "".join(
        lines
    )  # a CR or LF left in a line is not part of a CRLF: searched, not counted (3x faster on a photo)
    if "\r" in joined or "\n" in joined:
        return None
    if len(lines) < 2 or lines[0] != "BEGIN:VCARD" or lines[-1] != "END:VCARD":
        return None
    properties: list[_Property] = []
    heads = _HEADS
    for line in lines[1:-1]:
        colon = line.find(":")
        if colon <= 0:
            return None
        head = line[:colon]
        known = heads.get(head)
        if known is None and ('"' in head or (known := _head(head)) is None):
            return None
        name, params, group = known
        if name == "BEGIN" or name == "END":
            return None
        properties.append(_new_property(_Property, (name, params, line[colon + 1 :], group, head)))
    try:
        return _contact(properties)
    except InvalidInput:
        return None


def extra_losses(properties: Iterable[_Property]) -> list[str]:
    """What `Contact.extra` (one value by name) cannot keep of a card's other properties, in card order.

    Why said, not kept: `extra` maps a name to one text (`contact_extra` rows, the
    writer's plain `NAME:value` lines), so a property's second value, its parameters
    (`X-SOCIALPROFILE;TYPE=twitter`) and its group (Apple's `item1.X-ABLABEL`, which
    ties a label to its `item1.ADR`) have no place in it. Our writer writes none of them.
    """
    seen: dict[str, int] = {}
    lost: dict[str, None] = {}
    for prop in properties:
        name = prop.name
        if name in RESERVED_PROPERTIES:
            continue
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            continue  # the value and all it carries: counted below
        if prop.params:
            lost[f"parameters of {name} ({' '.join(prop.params)})"] = None
        if prop.group:
            lost[f"group of {name} ({prop.group})"] = None
    for name, count in seen.items():
        if count > 1:
            lost[f"{name} ({count - 1} more value{'s' if count > 2 else ''})"] = None
    return list(lost)


_CARD_MARK = re.compile(r"(?:[^:;.]*\.)?(BEGIN|END)(?:;[^:]*)?:(.*)", re.IGNORECASE | re.DOTALL)
# A logical line of a block without lone CRs or tab folds: its first physical line, then its
# continuation lines. Group 2 holds BEGIN or END wherever `_CARD_MARK` could match the line: the
# group prefix is the same (the text up to the first dot, if no colon or semicolon comes first)
# and so is the case folding, so a line without it is no mark; `_marked` decides the others.
_SEGMENT = re.compile(r"((?:[^:;.\n]*\.)?(BEGIN|END)?[^\n]*+\n)((?: [^\n]*+\n)*+)", re.IGNORECASE)
_CONTINUED = re.compile(r"(?: [^\n]*+\n)++")
_LONE_CR = re.compile(r"\r(?!\n)")
Numbered = list[tuple[str, int]]
TextOf = Callable[[str], str | None]  # a raw (escaped) value's canonical text, None if empty


def _card_texts(chunks: Iterable[bytes]) -> Iterator[tuple[str, int, Numbered | None]]:
    """Each card's text (with anything before it), the number vobject gives its first line, and its logical lines.

    vobject numbers a line 2 after a plain one and 1 more per fold (it counts the
    line end and the end of the text each logical line is), so messages name the
    line `read_vcards` names. The logical lines are unfolded here as vobject's
    `getLogicalLines` unfolds them (a line end and one space or tab go), because
    its regular expression walks every character of a 20 KiB photo: 47% of
    reading the cards (cProfile, 0.1x HEAVY address book). A card with a CR that
    ends no line (vobject takes it as a line end) gets None, and vobject's reading.

    The text decoded so far is taken a block of whole lines at a time. A block
    whose lines all end in CRLF (or all in LF) and whose folds all start with a
    space, as every writer's do, is cut into logical lines by one regular
    expression (`_SEGMENT`): a folded photo is unfolded by one split and join
    instead of a turn of the loop per physical line. Any other block is read a
    physical line at a time. Both update the same state in the same order, so
    where a block ends changes nothing. The 1x HEAVY cards, a piece per card, cut
    and unfolded: 1.72x less CPU than a line at a time (1.59-1.79, 5 interleaved rounds).
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0  # bytes given to the decoder before the current chunk
    rest = ""
    earlier: list[str] = []  # the current card's text in blocks before this one
    logical: Numbered | None = []
    current = ""  # the logical line being unfolded
    start = first = number = 1
    depth = 0
    ended = False  # the last line ended the card, unless the next one continues it
    for chunk in _then_none(chunks):
        try:
            text = rest + (decoder.decode(chunk) if chunk is not None else decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            pending = len(decoder.getstate()[0])  # bytes kept from the chunk before: a refused chunk keeps them
            bom = 3 if offset == 0 and (chunk or b"").startswith(codecs.BOM_UTF8) else 0
            at = offset - pending + exc.start + bom
            raise InvalidInput(not_utf8("the vCard file", at)) from None
        offset += len(chunk or b"")
        if chunk is not None:
            cut = text.rfind("\n") + 1
            block, rest = text[:cut], text[cut:]
            if not block:
                continue
        else:  # the end: the last line too, line end or not
            block, rest = text + "\n", ""
        taken = 0  # where the current card's text starts in the block
        at = 0  # where the line being read starts
        crs = block.count("\r")
        lean = "\t" not in block or ("\n\t" not in block and block[0] != "\t")  # single-character tests first
        if crs == 0:
            strip, fold = 1, "\n "
        elif crs == block.count("\n") and _LONE_CR.search(block) is None:  # every line ends in CRLF
            strip, fold = 2, "\r\n "
        else:
            lean = False
        if lean:
            if block[0] == " ":  # continuation lines of the last logical line of the block before
                more = _CONTINUED.match(block)
                assert more is not None
                at = more.end()
                ended = False
                parts = block[1 : at - strip].split(fold)
                current += "".join(parts)
                number += len(parts)
            for head, mark, folded in _SEGMENT.findall(block, at):
                if current and logical is not None:
                    logical.append((current, start))
                if ended:
                    earlier.append(block[taken:at])
                    yield "".join(earlier), first, logical
                    earlier, logical, first, taken = [], [], number, at
                    ended = False
                start = number
                if folded:  # one part per continuation line; split and join is twice as fast as replace
                    parts = folded[1:-strip].split(fold)
                    current = head[:-strip] + "".join(parts)
                    number += 2 + len(parts)
                    at += len(head) + len(folded)
                else:
                    current = head[:-strip]
                    number += 2
                    at += len(head)
                if mark:
                    depth, ended = _marked(head[:-strip], depth, ended)
                    ended = ended and not folded
        else:  # a line at a time; a head line does what a segment's does above, in the same order
            for line in block[:-1].split("\n"):
                bare = line[:-1] if line.endswith("\r") else line
                if "\r" in bare:
                    logical = None
                if line[:1] in (" ", "\t") and line:
                    ended = False
                    current += bare[1:]
                else:
                    if current and logical is not None:
                        logical.append((current, start))
                    if ended:
                        earlier.append(block[taken:at])
                        yield "".join(earlier), first, logical
                        earlier, logical, first, taken = [], [], number, at
                        ended = False
                    current, start = bare, number
                    depth, ended = _marked(bare, depth, ended)
                    number += 1  # a logical line starts here
                number += 1  # and a line ends
                at += len(line) + 1
        earlier.append(block[taken:])
    if current and logical is not None:
        logical.append((current, start))
    if card := "".join(earlier):
        yield card, first, logical


def _marked(line: str, depth: int, ended: bool) -> tuple[int, bool]:
    """The nesting depth after the physical line `line`, and whether it ended a card (if it is BEGIN/END:VCARD)."""
    if line == "END:VCARD":  # as our writer writes them: what `_CARD_MARK` finds in them
        depth = max(depth - 1, 0)
        return depth, depth == 0
    if line == "BEGIN:VCARD":
        return depth + 1, False
    mark = _CARD_MARK.match(line)
    if mark is None or mark.group(2).strip().upper() != "VCARD":
        return depth, ended
    depth = depth + 1 if mark.group(1).upper() == "BEGIN" else max(depth - 1, 0)
    return depth, depth == 0


def _then_none(chunks: Iterable[bytes]) -> Iterator[bytes | None]:
    yield from chunks
    yield None  # the end: the decoder is flushed and the last line taken


def _cards(text: str) -> Iterator[list[_Property]]:
    return _cards_of(getLogicalLines(io.StringIO(text), allowQP=False))


def _cards_of(lines: Iterable[tuple[str, int]]) -> Iterator[list[_Property]]:
    """The cards in logical lines numbered as vobject numbers them."""
    card: list[_Property] | None = None
    nested = 0  # a vCard inside AGENT is part of its card, not a contact of its own
    heads = _HEADS
    key: str | None
    for line, number in lines:
        colon = line.find(":")
        head = line[:colon]
        known = heads.get(head) if colon > 0 else None
        if known is None and colon > 0 and '"' not in head:
            known = _head(head)
        if known is not None:
            name, params, group = known
            value, key = line[colon + 1 :], head
        else:
            try:
                name, raw, value, group = parseLine(line, number)
            except ParseError:
                raise InvalidInput(f"line {number} is not a vCard property: {line[:60]!r}") from None
            name, params, key = name.upper(), _params(raw), None
        if card is not None and not nested and name != "BEGIN" and name != "END":  # most lines: the chain below
            card.append(_new_property(_Property, (name, params, value, group, key)))
        elif name == "BEGIN" and value.strip().upper() == "VCARD":
            if card is None:
                card = []
            else:
                nested += 1
        elif card is None:
            raise InvalidInput(f"line {number}: {name} is outside BEGIN:VCARD … END:VCARD")
        elif name == "END" and nested and value.strip().upper() == "VCARD":
            nested -= 1
        elif name == "END" and value.strip().upper() == "VCARD":
            yield card
            card = None
        elif not nested:
            card.append(_new_property(_Property, (name, params, value, group, key)))
    if card is not None:
        raise InvalidInput("the last vCard has no END:VCARD: the file is cut short")


# What `_cards_of` knows of the heads (`NAME;PARAMS`, before the first colon) it has read: the
# upper-case name, the parameters and the group, as `parseLine` and `_params` give them. A head
# without a quote ends at the line's first colon whatever follows (vobject's line pattern lets
# only a quoted parameter value hold a colon), so `parseLine(head + ":")` parses it exactly; a head
# with a quote is parsed with its line every time. The parameters are shared by the properties of
# one head: nothing may change them. Cutting and parsing the 1x HEAVY cards took 2.73x less CPU
# than with `parseLine` for every line (2.56-3.60, 5 interleaved rounds).
_HEADS: dict[str, tuple[str, dict[str, list[str]], str | None]] = {}
_KEPT = 4096  # distinct heads remembered (a card has about a dozen; an address book a few dozen)


def _head(head: str) -> tuple[str, dict[str, list[str]], str | None] | None:
    """`head` parsed and remembered in `_HEADS`; None if vobject refuses it (its line gives the message)."""
    try:
        name, raw, _, group = parseLine(head + ":")
    except ParseError:
        return None
    if len(_HEADS) >= _KEPT:
        _HEADS.clear()
        _TYPES.clear()
    known = _HEADS[head] = (name.upper(), _params(raw), group)
    return known


def _params(raw: list[list[str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, *values in raw:
        if values:
            key = name.upper()
        else:  # vCard 2.1 style: ;HOME;VOICE or ;BASE64
            key = "ENCODING" if name.upper() in _BARE_ENCODINGS else "TYPE"
            values = [name]
        params.setdefault(key, []).extend(_CARETS.sub(_uncaret, v) if "^" in v else v for v in values)
    return params


def _uncaret(match: re.Match[str]) -> str:
    return _UNCARET[match.group(1)]


# Why the `in` tests before the loops and regular expressions below: most values have no
# escapes, and skipping the work for them took the 1,000 cards of a 0.1x HEAVY archive from
# 0.144 to 0.131 s CPU (median of 5, equal contacts).


def _split(value: str, separator: str) -> list[str]:
    """Split at separators that are not backslash-escaped; the parts stay escaped."""
    if "\\" not in value:
        return value.split(separator)
    parts, current = [], []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            current.append(ch + next(chars, ""))
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _ESCAPED.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), value)


def _contact(properties: list[_Property]) -> Contact:
    """The record of one card's properties.

    Every text of the record comes from a property value through `canonical.text`, which
    returns it as it is unless it holds NUL, CR, another control character or a lone
    surrogate; unescaping adds none of them. So one search of the card's values (less the
    photo's) tells whether the ~30 calls per card can be skipped: the texts are the same.
    With the TYPE parameters worked out once per head, the 1x HEAVY cards' records took
    1.49x less CPU (1.41-1.94, 5 interleaved rounds).
    """
    by_name: defaultdict[str, list[_Property]] = defaultdict(list)
    for prop in properties:
        by_name[prop.name].append(prop)
    first = {name: props[0] for name, props in by_name.items()}.get
    if "PHOTO" in by_name:
        plain = _UNCANONICAL.search("\n".join([prop.value for prop in properties if prop.name != "PHOTO"])) is None
    else:
        plain = _UNCANONICAL.search("\n".join(map(_value, properties))) is None
    text: TextOf = _plain_text if plain else _canonical_text
    typed = _plain_typed if plain else _canonical_typed
    uid = (text(p.value) if (p := first("UID")) else None) or _derived_uid(properties)
    fn = first("FN")
    org = _split(p.value, ";") if (p := first("ORG")) else [""]
    departments = [unit for unit in map(text, org[1:]) if unit]
    anniversary = first("ANNIVERSARY") or first("X-ANNIVERSARY")
    if plain:  # PHOTO, the one value not searched, is reserved: never in `extra`
        extra = {name: props[0].value for name, props in by_name.items() if name not in RESERVED_PROPERTIES}
    else:
        extra = {}
        for prop in properties:  # every value, as before: canonical.text refuses a lone surrogate
            if prop.name not in RESERVED_PROPERTIES:
                extra.setdefault(prop.name, canonical.text(prop.value))
    try:
        photo = next(filter(None, map(_photo, by_name["PHOTO"])), None) if "PHOTO" in by_name else None
    except ValueError as exc:
        raise InvalidInput(f"vCard {uid!r}: {exc}") from None
    return Contact(
        uid=uid,
        formatted_name=None if fn is None or DERIVED_PARAM in fn.params else text(fn.value),
        name=_name(first("N"), text),
        nickname=text(p.value) if (p := first("NICKNAME")) else None,
        organization=text(org[0]),
        department="; ".join(departments) or None,
        title=text(p.value) if (p := first("TITLE")) else None,
        role=text(p.value) if (p := first("ROLE")) else None,
        emails=tuple(map(typed, by_name["EMAIL"])) if "EMAIL" in by_name else (),
        phones=tuple(map(typed, by_name["TEL"])) if "TEL" in by_name else (),
        addresses=_addresses(by_name["ADR"], by_name["LABEL"], text) if "ADR" in by_name or "LABEL" in by_name else (),
        urls=tuple(map(typed, by_name["URL"])) if "URL" in by_name else (),
        impps=tuple(map(typed, by_name["IMPP"])) if "IMPP" in by_name else (),
        birthday=_date(first("BDAY")),
        anniversary=_date(anniversary),
        categories=tuple(
            category for prop in by_name["CATEGORIES"] for category in map(text, _split(prop.value, ",")) if category
        )
        if "CATEGORIES" in by_name
        else (),
        note=text(p.value) if (p := first("NOTE")) else None,
        photo=photo,
        extra=extra,
        created=_timestamp(first(CREATED_PROPERTY)),
        updated=_timestamp(first("REV")),
    )


_value = itemgetter(2)  # a `_Property`'s value


def _plain_text(value: str) -> str | None:
    """`_canonical_text` of a value without anything `canonical.text` changes."""
    return (_unescape(value) if "\\" in value else value) or None


def _canonical_text(value: str) -> str | None:
    return canonical.optional_text(_unescape(value))


def _derived_uid(properties: list[_Property]) -> str:
    """A card without UID gets one from its content, so importing it twice gives the same UID."""
    content = "\n".join(f"{p.name}:{p.value}" for p in properties)
    return f"urn:uuid:{uuid.uuid5(_UID_NAMESPACE, content)}"


def _name(prop: _Property | None, text: TextOf) -> Name | None:
    """N; an N with every component empty (3.0 requires one) means no name."""
    if prop is None:
        return None
    parts = [*map(text, _split(prop.value, ";")), None, None, None, None, None][:5]
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


_TYPES: dict[str, tuple[tuple[str, ...], bool]] = {}  # `_types` of the parameters of a head in `_HEADS`


def _types_of(prop: _Property) -> tuple[tuple[str, ...], bool]:
    """`_types` of the property's parameters, worked out once per head (`TEL;TYPE=cell`) read."""
    if prop.head is None:
        return _types(prop.params)
    types = _TYPES.get(prop.head)
    if types is None:
        types = _TYPES[prop.head] = _types(prop.params)
    return types


def _plain_typed(prop: _Property) -> Typed:
    """EMAIL, TEL, URL or IMPP of a card without anything `canonical.text` changes."""
    types, preferred = _types_of(prop)
    value = prop.value
    return Typed(_unescape(value) if "\\" in value else value, types, preferred)


def _canonical_typed(prop: _Property) -> Typed:
    types, preferred = _types_of(prop)
    return Typed(canonical.text(_unescape(prop.value)), types, preferred)


def _addresses(
    adrs: list[_Property], labels: list[_Property], text: Callable[[str], str | None]
) -> tuple[Address, ...]:
    """ADR with its label: the LABEL parameter (4.0), else the LABEL property of its group (3.0).

    An ungrouped LABEL goes to the first address with the same types that has
    no label yet; one that matches nothing is an address of its own.
    """
    addresses: list[Address] = []
    groups: dict[str, int] = {}
    for prop in adrs:
        parts = [*map(text, _split(prop.value, ";")), *[None] * 7][:7]
        types, preferred = _types_of(prop)
        if prop.group:
            groups[prop.group.upper()] = len(addresses)
        po_box, extended, street, locality, region, postal_code, country = parts
        labels_given = prop.params.get("LABEL")  # canonical.optional_text("") is None
        address = Address(
            types,
            po_box,
            extended,
            street,
            locality,
            region,
            postal_code,
            country,
            canonical.optional_text(",".join(labels_given)) if labels_given else None,
            preferred,
        )
        addresses.append(address)
    for prop in labels:
        label = text(prop.value)
        if label is None:
            continue
        types, preferred = _types_of(prop)
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


def _date(prop: _Property | None) -> str | None:
    """YYYY-MM-DD or --MM-DD from basic or extended forms, a date-time, or Apple's omitted year."""
    if prop is None or "text" in (v.lower() for v in prop.params.get("VALUE", [])):
        return None
    value = _unescape(prop.value).strip().partition("T")[0]
    omitted = prop.params.get(OMIT_YEAR_PARAM, [""])[0]
    if len(omitted) == 4 and value.startswith(omitted):
        value = "--" + value[4:].lstrip("-")
    try:
        return canonical.birthday(value)
    except ValueError:
        return None


def _timestamp(prop: _Property | None) -> dt.datetime | None:
    if prop is None:
        return None
    try:
        return canonical.timestamp(_unescape(prop.value))
    except ValueError:
        return None


def _photo(prop: _Property) -> Blob | None:
    """An embedded photo: 3.0 ENCODING=b with TYPE, or a 4.0 `data:` URI. A link is None."""
    value = prop.value.strip()
    if any(e.lower() in ("b", "base64") for e in prop.params.get("ENCODING", [])):
        kind = (prop.params.get("TYPE") or [""])[0].strip().lower()
        if "/" in kind:
            media_type = kind
        else:
            media_type = f"image/{kind}" if kind else "application/octet-stream"
        return Blob(media_type=media_type, data=_base64(value))
    if value[:5].lower() != "data:":
        return None
    header, comma, payload = _unescape(value[5:]).partition(",")  # some writers escape , and ;
    if not comma:
        raise ValueError("PHOTO is a data: URI without a comma before its data")
    media_type, *flags = header.split(";")
    if "base64" in (f.strip().lower() for f in flags):
        data = _base64(payload)
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    return Blob(media_type=media_type.strip().lower() or "application/octet-stream", data=data)


def _base64(value: str) -> bytes:
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except binascii.Error:
        raise ValueError("PHOTO is not valid base64") from None
