"""The lean vCard reading gives what vobject's line-at-a-time reading gave, for any bytes.

Why against an oracle: `exporters.vcard.reader` now cuts a block of lines into logical
lines with one regular expression, parses each distinct head once and skips
`canonical.text` for cards that hold nothing it changes; each shortcut is exact by
construction or refuses and falls back. `tests/formats/vcard_reader_oracle.py` is the
reader before those shortcuts (every line through vobject's `parseLine`, unfolded one
physical line at a time). The two must agree on the contacts, on the message and line
number of every refusal, and on how many contacts come before it, for cards as our writer
writes them (both versions) and for cards no writer of ours would write: folded at odd
places or with tabs, LF or lone CR line ends, quoted and escaped parameters, groups,
lower-case names, 2.1-style bare parameters, nested and odd BEGIN/END lines, control
characters, stray lines, a cut-short file, bytes that are not UTF-8, in pieces of any size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Contact
from errors import InvalidInput
from exporters.vcard import reader
from exporters.vcard.writer import VERSIONS, contact_to_vcard
from tests.formats import vcard_reader_oracle as oracle
from tests.profiles import examples
from tests.strategies.contacts import contacts

ALICE = Path(__file__).parent.parent / "data" / "alice.json"
SOME = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lines no writer of ours writes, each a way for a shortcut to go wrong.
ODD_LINES = [
    'TEL;TYPE="cell,voice":+1 555 0100',
    'X-QUOTED;X-P="a:b;c":value:with:colons',
    'EMAIL;TYPE="unterminated:a@example.com',
    'X-Q;X-P="x":y;X-Z="w:v"',
    "NOTE;X-E=a\\,b:x\\,y\\;z\\\\n\\N",
    "X-BACKSLASH;X-P=a\\:b:c",
    "item1.TEL;TYPE=work:+2",
    "item1.ADR;TYPE=home:;;Street 1;Town;;;",
    "item1.LABEL;TYPE=home:Street 1\\nTown",
    "LABEL;TYPE=work:Ungrouped label",
    "tel;type=cell:+3",
    "Tel;Type=Home,PREF:+4",
    "TEL;HOME;VOICE:+5",
    "TEL;TYPE=work;PREF=1:+6",
    "EMAIL;TYPE=INTERNET,pref:a@example.com",
    "PHOTO;BASE64;JPEG:iVBORw0KGgo=",
    "PHOTO;ENCODING=b;TYPE=PNG:@@not base64@@",
    "PHOTO:data:image/png;base64,iVBORw0KGgo=",
    "PHOTO:data:text/plain,a%20b",
    "PHOTO:data:nocomma",
    "PHOTO;VALUE=uri:http://example.com/a.png",
    "X_UNDER_SCORE:underscores become dashes",
    "ADR;LABEL=\"line^nnext ^'q^' ^^\":;;street;;;;",
    "FN;X-LIFEBOAT-DERIVED=TRUE:Derived Name",
    "N:a;b;c;d;e;f;g",
    "N:;;;;",
    "ORG:Org\\;Not a unit;Unit;;Unit 2",
    "CATEGORIES:a\\,b,c,,d",
    "no colon here",
    ":starts with a colon",
    "X-EMPTY:",
    "A.B.C:x",
    "X-A;;X-B=1:v",
    "X-A;:v",
    "X-A;X-B=1;:v",
    "X-A;X-B=,,:v",
    "X-A;X-B==:v",
    'X-A;X-B=1,"2":v',
    "X-DUP:first",
    "X-DUP:second",
    "UID:",
    "UID:\\,escaped\\;uid",
    "NOTE:nul\x00here",
    "NOTE:vertical\x0btab",
    "NOTE:del\x7f and c1\x85",
    "NOTE:tab\tinside",
    "NOTE:line\u2028separator",
    "X-CONTROL:a\x01b\x00c",
    "TEL;TYPE=cell:+1\x00 555",
    "EMAIL;TYPE=work\x07,home:a@example.com",
    "URL:http://example.com/\x1b",
    "CATEGORIES:a\x02,b",
    "N:Fam\x03ily;Given",
    "ADR:;;Street\x04;;;;",
    "REV:20200101T000000Z",
    "REV:2020-01-01T00:00:00+02:00",
    "REV:garbage",
    "X-LIFEBOAT-CREATED:20200101T240000Z",
    "BDAY:--0229",
    "BDAY:19800101",
    "BDAY;VALUE=text:circa 1990",
    "BDAY;X-APPLE-OMIT-YEAR=1604:1604-02-29",
    "ANNIVERSARY:2001-02-03T04:05:06",
    "X-ANNIVERSARY:2001-13-40",
    "AGENT:",
    "BEGIN:VCARD",
    "END:VCARD",
    "begin:vcard",
    "end:VCARD ",
    "x.END:VCARD",
    "END;X=1:VCARD",
    "BEG\u0131N:VCARD",
    "END: vcard",
    "END:VCARDS",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "",
    " a line that starts with a space",
    "\tone that starts with a tab",
]
ENDINGS = ["\r\n", "\n", "\r"]


@st.composite
def writer_lines(draw: st.DrawFn) -> list[str]:
    """The logical lines of a few cards as our writer writes them."""
    cards = draw(st.lists(contacts(), min_size=1, max_size=3))
    lines: list[str] = []
    for card in cards:
        text = contact_to_vcard(card, draw(st.sampled_from(VERSIONS))).decode("utf-8")
        lines += text.replace("\r\n ", "").split("\r\n")[:-1]
    return lines


@st.composite
def odd_address_books(draw: st.DrawFn) -> bytes:
    """Our writer's lines, changed and interleaved with `ODD_LINES`, folded and ended in odd ways."""
    lines = draw(writer_lines())
    odd: list[str] = []
    for line in lines:
        if draw(st.integers(0, 5)) == 0:
            odd.append(draw(st.sampled_from(ODD_LINES)))
        change = draw(st.integers(0, 7))
        name, colon, value = line.partition(":")
        if change == 0:
            line = name.lower() + colon + value
        elif change == 1 and name not in ("BEGIN", "END"):
            line = f"grp{draw(st.integers(0, 3))}.{line}"
        if draw(st.integers(0, 30)) != 0:  # now and then a line goes missing (an END:VCARD, say)
            odd.append(line)
    uniform = draw(st.sampled_from(["\r\n", "\n", None]))
    text = []
    for line in odd:
        folds = draw(st.lists(st.integers(1, max(1, len(line))), max_size=3, unique=True))
        pieces, at = [], 0
        for fold in sorted(folds):
            pieces.append(line[at:fold])
            at = fold
        pieces.append(line[at:])
        ending = uniform or draw(st.sampled_from(ENDINGS))
        lead = draw(st.sampled_from([" ", " ", " ", "\t"]))
        text.append((ending + lead).join(pieces) + ending)
    data = "".join(text).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82"])) + data[at:]
    if draw(st.integers(0, 9)) == 0:  # cut short
        data = data[: draw(st.integers(0, len(data)))]
    return data


def in_pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` cut at the sizes given, in turn; the rest in one piece."""
    pieces, at = [], 0
    for size in sizes:
        pieces.append(data[at : at + size])
        at += size
    return [*pieces, data[at:]]


def outcome(read: Callable[[], Iterable[Contact]]) -> tuple[list[Contact], str | None]:
    """The contacts read before any refusal, and the refusal's message."""
    found: list[Contact] = []
    try:
        for contact in read():
            found.append(contact)
    except InvalidInput as exc:
        return found, str(exc)
    return found, None


def both(data: bytes, sizes: list[int]) -> Iterator[tuple[object, object]]:
    """(new, oracle) outcomes of streaming `data` in pieces and of reading it whole."""
    yield (
        outcome(lambda: reader.stream_vcards(in_pieces(data, sizes))),
        outcome(lambda: oracle.stream_vcards(in_pieces(data, sizes))),
    )
    yield outcome(lambda: reader.read_vcards(data)), outcome(lambda: oracle.read_vcards(data))


@SOME
@given(cards=st.lists(contacts(), max_size=4), version=st.sampled_from(VERSIONS), sizes=st.lists(st.integers(1, 200)))
def test_cards_our_writer_writes_read_as_vobjects_reading_read_them(
    cards: list[Contact], version: str, sizes: list[int]
) -> None:
    data = b"".join(contact_to_vcard(card, version) for card in cards)
    for new, old in both(data, sizes):
        assert new == old
    assert outcome(lambda: reader.stream_vcards(in_pieces(data, sizes))) == (cards, None)


@SOME
@given(data=odd_address_books(), sizes=st.lists(st.integers(1, 300), max_size=6))
def test_odd_address_books_read_as_vobjects_reading_read_them(data: bytes, sizes: list[int]) -> None:
    for new, old in both(data, sizes):
        assert new == old


@SOME
@given(line=st.sampled_from(ODD_LINES) | st.text(max_size=40), version=st.sampled_from(VERSIONS))
def test_any_line_in_a_card_reads_as_vobjects_reading_reads_it(line: str, version: str) -> None:
    card = contact_to_vcard(Contact(uid="u", formatted_name="Ann"), version)
    data = card.replace(b"END:VCARD", line.encode("utf-8", "surrogatepass") + b"\r\nEND:VCARD")
    for new, old in both(data, [len(data) // 2]):
        assert new == old


def test_alices_address_book_reads_as_before_in_both_versions() -> None:
    account = account_from_dict(json.loads(ALICE.read_text("utf-8")))
    for version in VERSIONS:
        data = b"".join(contact_to_vcard(c, version) for c in account.contacts)
        for size in (1, 7, 1 << 16):
            pieces = [data[i : i + size] for i in range(0, len(data), size)]
            assert list(reader.stream_vcards(pieces)) == list(oracle.stream_vcards(pieces))
        assert list(reader.read_vcards(data)) == list(oracle.read_vcards(data))


@pytest.mark.parametrize(
    "text",
    [
        "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n \r\n",  # END:VCARD continued by a blank fold
        "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n X\r\nEND:VCARD\r\n",  # END:VCARD continued: the card goes on
        "BEGIN:VCARD\r\nFN:A\rEND:VCARD\r\nBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n",  # a lone CR mid-card
        "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nX-Y:1\rBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n",  # after a card
        "BEGIN:VCARD\nFN:A\r\nEND:VCARD\n",  # LF and CRLF mixed
        "BEGIN:VCARD\r\nFN:A\rX-B:1\nEND:VCARD\r\n",  # as many CRs as LFs, one of them lone
        "BEGIN:VCARD\r\nFN:A\r\n B\rC\n D\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\r\nFN:A\r\n\tfolded with a tab\r\nEND:VCARD\r\n",
        "\tBEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n",  # a continuation first
        "BEGIN:VCARD\r\nAGENT:\r\nBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\nFN:A\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\r\nAGENT:\r\nBEGIN:VCA\r\n RD\r\nFN:B\r\nEND:VCARD\r\nFN:A\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD",  # no line end at the end
        "BEGIN:VCARD\r\nFN:A\r\n",  # no END:VCARD
        "FN:outside\r\n",
        "",
    ],
)
def test_odd_line_ends_and_marks_read_as_vobjects_reading_reads_them(text: str) -> None:
    data = text.encode("utf-8")
    for size in (1, 2, 3, 5, 8, 1 << 16):
        for new, old in both(data, [size] * (len(data) // size)):
            assert new == old


def test_more_heads_than_are_remembered_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "_KEPT", 3)
    lines = "".join(f"TEL;TYPE=t{i}:+{i}\r\nX-{i};X-P={i}:{i}\r\n" for i in range(10))
    data = f"BEGIN:VCARD\r\nUID:a\r\n{lines}END:VCARD\r\n".encode() * 3
    for new, old in both(data, [100] * 20):
        assert new == old
    assert len(reader._HEADS) <= 3


# --- one card straight from its bytes (`reader.read_card`, what the fidelity drill reads each card with) ---


def assert_read_alone_as_the_stream_reads_it(data: bytes) -> Contact | None:
    """`read_card` of any bytes is None, or the one contact the stream reads from them with no refusal."""
    alone = reader.read_card(data)
    if alone is not None:
        assert outcome(lambda: reader.stream_vcards([data])) == ([alone], None)
        assert outcome(lambda: oracle.stream_vcards([data])) == ([alone], None)
    return alone


@SOME
@given(card=contacts(), version=st.sampled_from(VERSIONS))
def test_a_card_our_writer_writes_is_read_straight_from_its_bytes(card: Contact, version: str) -> None:
    """Unless a parameter is quoted (`ADR;LABEL=":"`): such a head is parsed with its line, by the stream."""
    data = contact_to_vcard(card, version)
    alone = assert_read_alone_as_the_stream_reads_it(data)
    assert alone == card or (alone is None and b'"' in data)


@SOME
@given(data=odd_address_books())
def test_odd_bytes_are_read_straight_as_the_stream_reads_them_or_left_to_it(data: bytes) -> None:
    assert_read_alone_as_the_stream_reads_it(data)


@SOME
@given(
    lines=st.lists(st.sampled_from([*ODD_LINES, "BEGIN:VCARD", "END:VCARD", "begin:vcard", "END:VCARDX"]), max_size=3)
    | st.lists(st.text(max_size=40), max_size=2),
    version=st.sampled_from(VERSIONS),
    ending=st.sampled_from(["\r\n", "\n", "\r", "\r\n\r\n", "\r\n \r\n"]),
)
def test_a_card_with_odd_lines_is_read_straight_as_the_stream_reads_it_or_left_to_it(
    lines: list[str], version: str, ending: str
) -> None:
    card = contact_to_vcard(Contact(uid="u", formatted_name="Ann", emails=()), version)
    odd = "".join(line + ending for line in lines).encode("utf-8", "surrogatepass")
    assert_read_alone_as_the_stream_reads_it(card.replace(b"END:VCARD", odd + b"END:VCARD"))
    assert_read_alone_as_the_stream_reads_it(card.replace(b"VERSION", odd + b"VERSION"))
    assert_read_alone_as_the_stream_reads_it(card + odd)


def test_alices_cards_are_each_read_straight_as_the_stream_reads_them() -> None:
    account = account_from_dict(json.loads(ALICE.read_text("utf-8")))
    for version in VERSIONS:
        straight = [assert_read_alone_as_the_stream_reads_it(contact_to_vcard(c, version)) for c in account.contacts]
        assert straight == list(account.contacts)  # photos (folded) and all
