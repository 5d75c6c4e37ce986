"""The check in two processes finds what it finds in one; a second process that dies is one line, not a hang.

Why: `check_archive` splits a large archive between two processes (cards and
files by SHA-256, calendar runs by number) and merges what each found. The
merged report must be the one a single process gives: the same problems, in the
same order, with the same messages, and the same figures. Archives here are
broken deliberately (with correct checksums, so the parsers are what fails),
often twice in one file, so that which problem comes first decides the answer.
Calendar runs are shortened so that a small archive has many of them: the
account is TYPICAL's 200 cards and 100 notes with 400 events rather than 1,000
(two calendars of 200), and a run is 20 events, so each calendar still has ten
runs (as TYPICAL's 500-event calendars have with runs of 50) at 0.7x a check's
CPU; what is split and merged is the same, only each run is shorter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vobject
from flask.testing import FlaskCliRunner

from account.records import Account
from account.sample import TYPICAL, generate_account
from errors import InvalidInput
from exporters.archive import check
from exporters.archive.counts import account_counts
from exporters.archive.helper import Helper, HelperFailed
from exporters.archive.layout import Bundle
from exporters.archive.manifest import RESERVED_NAMES, parse_manifest
from exporters.archive.places import ADDRESS_BOOK
from exporters.archive.writer import Entry
from tests.archives import MemorySource, local_path, write_archive
from tests.helper_modules import loaded_of, run_helper

# Each test checks a whole archive twice, once with a second process: ~50 s of `make test-fast` on its own.
pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
RUN = 20  # events per calendar run: a calendar of SIZE (200 events) then has ten
# TYPICAL with fewer events: 200 cards, 100 notes, two calendars of 200 events.
SIZE = dataclasses.replace(TYPICAL, events=400)

Members = dict[str, bytes]


@pytest.fixture(scope="module")
def account() -> Account:
    return generate_account("split@example.com", SIZE, seed=5)


@pytest.fixture(scope="module")
def members(account: Account, tmp_path_factory: pytest.TempPathFactory) -> Members:
    return archive_members(account, tmp_path_factory.mktemp("split"))


def archive_members(account: Account, folder: Path) -> Members:
    """Every file of the account's archive as the exporter writes it, by name."""
    bundle = Bundle(MemorySource(account), now=NOW, timezone=account.timezone)
    meta = {"user": account.email, "counts": account_counts(account), "vcard_version": "3.0"}
    info = write_archive(folder, "whole.zip", bundle.entries(), meta, NOW, layout=lambda: bundle.layout.as_dict())
    with zipfile.ZipFile(local_path(info)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture(autouse=True)
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "CHUNK", RUN)  # passed on to the second process


def forge(folder: Path, members: Members, *, counts: dict[str, int] | None = None) -> Path:
    """An archive of `members` with correct checksums (and manifest counts changed by `counts`)."""
    meta = dict(parse_manifest(members["manifest.json"]).meta)
    if counts:
        meta["counts"] = {**meta["counts"], **counts}
    entries = [Entry(name, [data]) for name, data in members.items() if name not in RESERVED_NAMES]
    return local_path(write_archive(folder, "forged.zip", entries, meta, NOW))


def found(path: Path, processes: int, memo: Path | None = None) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The problems `check_archive` reports, and its figures when there are none."""
    try:
        report = check.check_archive(path, processes=processes, memo_dir=memo)
    except InvalidInput as exc:
        return exc.problems, {}
    return [], {"files": dict(report.files), "items": +report.items, "counts": report.counts()}


@pytest.fixture(scope="module")
def warm_memo(members: Members, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A memo that has verified the intact archive: every item of it is known."""
    folder = tmp_path_factory.mktemp("memo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(check, "CHUNK", RUN)
        check.check_archive(forge(folder, members), processes=1, memo_dir=folder / "memo")
    return folder / "memo"


def memo_copy(memo: Path, folder: Path) -> Path:
    return Path(shutil.copytree(memo, folder / "memo"))


# --- deliberate damage -------------------------------------------------------------------


def cards(members: Members) -> list[bytes]:
    return [b"BEGIN:VCARD" + part for part in members[ADDRESS_BOOK].split(b"BEGIN:VCARD")[1:]]


def card_file(members: Members, card: bytes) -> str:
    return next(n for n, data in members.items() if n.startswith("contacts/cards/") and data == card)


def replace_card(members: Members, index: int, change: Callable[[bytes], bytes], *, own_file: bool) -> None:
    card = cards(members)[index]
    name = card_file(members, card)
    members[ADDRESS_BOOK] = members[ADDRESS_BOOK].replace(card, change(card), 1)
    if own_file:
        members[name] = change(card)


def without(prop: bytes) -> Callable[[bytes], bytes]:
    return lambda card: re.sub(rb"\r\n" + prop + rb"[;:][^\r]*(\r\n [^\r]*)*", b"", card, count=1)


def stray_before_card(members: Members, index: int) -> None:
    card = cards(members)[index]
    members[ADDRESS_BOOK] = members[ADDRESS_BOOK].replace(card, b"NOT A CARD\r\n" + card, 1)


def calendar(members: Members) -> str:
    """The calendar with the most events."""
    return max((n for n in members if n.startswith("calendars/")), key=lambda n: members[n].count(b"BEGIN:VEVENT"))


def change_event(members: Members, index: int, change: Callable[[bytes], bytes]) -> None:
    name = calendar(members)
    parts = members[name].split(b"BEGIN:VEVENT")
    parts[index + 1] = change(parts[index + 1])
    members[name] = b"BEGIN:VEVENT".join(parts)


def bad_start(event: bytes) -> bytes:
    return re.sub(rb"\r\nDTSTART[;:][^\r]*", b"\r\nDTSTART:not-a-date", event, count=1)


def stray_after(event: bytes) -> bytes:
    return event + b"X-STRAY:1\r\n"


def bad_utf8(event: bytes) -> bytes:
    return event.replace(b"\r\nUID:", b"\r\nX-BYTES:\xff\xfe\r\nUID:", 1)


def notes(members: Members) -> list[str]:
    return [n for n in members if n.startswith("notes/") and n.endswith(".md")]


def damage_notes(members: Members) -> None:
    first, second = notes(members)[:2]
    members[first] = members[first].split(b"\n---\n", 1)[1]
    members[second] = re.sub(rb"\nid: [^\n]*", b"", members[second], count=1)


def cards_without_uid(m: Members) -> None:
    for i in (3, 77, 150):
        replace_card(m, i, without(b"UID"), own_file=True)


def card_without_fn_then_stray_line(m: Members) -> None:
    replace_card(m, 20, without(b"FN"), own_file=False)
    stray_before_card(m, 180)


def stray_line_then_card_without_fn(m: Members) -> None:
    stray_before_card(m, 20)
    replace_card(m, 180, without(b"FN"), own_file=False)


def card_file_unlike_its_card(m: Members) -> None:
    card = cards(m)[42]
    m[card_file(m, card)] = without(b"FN")(card)


def bad_event_then_stray_line(m: Members) -> None:
    change_event(m, 52, bad_start)  # in the third run ...
    change_event(m, 152, stray_after)  # ... and the eighth


def stray_line_then_bad_event(m: Members) -> None:
    change_event(m, 52, stray_after)
    change_event(m, 152, bad_start)


def calendar_not_utf8(m: Members) -> None:
    change_event(m, 104, bad_utf8)  # in the sixth run


DAMAGE: dict[str, tuple[Callable[[Members], None], list[str]]] = {
    "cards without UID, in the book and their files": (
        cards_without_uid,
        ["contacts/contacts.vcf: ValueError: a card lacks FN or UID", "contacts/cards/"],
    ),
    "a card without FN, then a stray line": (
        card_without_fn_then_stray_line,
        ["contacts/contacts.vcf: ValueError: a card lacks FN or UID"],
    ),
    "a stray line, then a card without FN": (
        stray_line_then_card_without_fn,
        ["contacts/contacts.vcf: ValueError: unexpected line outside a VCARD"],
    ),
    "a card file that is not its book card": (card_file_unlike_its_card, ["contacts/cards/", "a card lacks FN or UID"]),
    "an event no parser reads, then a stray line": (bad_event_then_stray_line, ["CalendarParseError"]),
    "a stray line, then an event no parser reads": (
        stray_line_then_bad_event,
        ["ValueError: unexpected line between events"],
    ),
    "bytes that are not UTF-8 in a calendar": (
        calendar_not_utf8,
        ["the calendar file is not UTF-8 (bad byte at offset ", "): re-save it as UTF-8"],
    ),
    "notes without front matter or id": (
        damage_notes,
        ["ValueError: the note has no front matter", "ValueError: front matter has no id"],
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_two_processes_and_a_memo_report_the_same_problems_as_one_process_without(
    members: Members, warm_memo: Path, tmp_path: Path, case: str
) -> None:
    """With a memo that knows every other item, the same problems again, in the same words and order."""
    damage, expected = DAMAGE[case]
    broken = dict(members)
    damage(broken)
    assert broken != members
    path = forge(tmp_path, broken)
    one, _ = found(path, 1)
    two, _ = found(path, 2)
    assert two == one
    # Two processes with a warm memo share its snapshot and cut the runs alike; one process with a memo
    # is the same code without the helper (tests/formats/test_check_memo.py checks it on its own).
    assert found(path, 2, memo_copy(warm_memo, tmp_path))[0] == one
    assert found(path, 1, tmp_path / "cold")[0] == one
    said = "\n".join(f"{where}: {what}" for where, what in one)
    for text in expected:
        assert text in said, said
    if "then" in case:  # two problems in one file: only the first is reported
        assert len([p for p in one if p[0] == ADDRESS_BOOK or p[0].startswith("calendars/")]) == 1


def note_not_utf8(m: Members) -> None:
    name = notes(m)[5]
    m[name] = m[name].replace(b"\n---\n", b"\n---\n\xff", 1)


def card_not_utf8(m: Members) -> None:
    replace_card(m, 150, lambda card: card.replace(b"\r\nUID:", b"\r\nNOTE:caf\xe9\r\nUID:", 1), own_file=False)


@pytest.mark.parametrize(
    ("damage", "kind", "what"),
    [
        (calendar_not_utf8, "calendars/", "the calendar file"),
        (note_not_utf8, "notes/", "the note"),
        (card_not_utf8, ADDRESS_BOOK, "the vCard file"),
    ],
)
def test_bytes_that_are_not_utf8_are_one_line_naming_the_file_the_offset_and_the_fix(
    members: Members, tmp_path: Path, damage: Callable[[Members], None], kind: str, what: str
) -> None:
    """Deep in a large file (past the first read), in words, the offset counted from the file's start."""
    broken = dict(members)
    damage(broken)
    (name,) = [n for n in broken if broken[n] != members[n] and n.startswith(kind)]
    with pytest.raises(UnicodeDecodeError) as whole:  # the whole file decoded at once says where
        broken[name].decode("utf-8")
    bad = whole.value.start
    assert bad > 8192 or kind == "notes/"  # past the first buffer, where a per-line position would be wrong
    path = forge(tmp_path, broken)
    one, _ = found(path, 1)
    assert one == found(path, 2)[0]
    assert (name, f"{what} is not UTF-8 (bad byte at offset {bad}): re-save it as UTF-8") in one


def test_manifest_counts_the_files_do_not_bear_out_are_reported_in_both(members: Members, tmp_path: Path) -> None:
    events = parse_manifest(members["manifest.json"]).counts["events"]
    path = forge(tmp_path, members, counts={"events": events + 1})
    one, _ = found(path, 1)
    assert one == found(path, 2)[0]
    assert one == [("manifest.json", f"counts say {events + 1} events, the files hold {events}")]


def test_an_intact_archive_gives_the_same_figures_in_both(members: Members, account: Account, tmp_path: Path) -> None:
    path = forge(tmp_path, members)
    one, figures = found(path, 1)
    assert not one and figures["counts"] == account_counts(account)
    assert found(path, 2) == ([], figures)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_cold_and_a_warm_memo_give_the_figures_of_no_memo(members: Members, tmp_path: Path, processes: int) -> None:
    path = forge(tmp_path, members)
    expected = found(path, 1)
    memo = tmp_path / "memo"
    assert found(path, processes, memo) == expected  # cold: everything parsed, then remembered
    assert found(path, processes, memo) == expected  # warm: nothing parsed
    assert found(path, 3 - processes, memo) == expected


def test_each_share_parses_part_of_every_kind_and_together_all_of_it(members: Members, tmp_path: Path) -> None:
    path = forge(tmp_path, members)
    whole = check.check_share(path, check.Share(), RUN)
    halves = [check.check_share(path, check.Share(i, 2), RUN) for i in (0, 1)]
    for kind in ("cards", "notes"):
        assert all(0 < half.items.get(kind, 0) < whole.items[kind] for half in halves)
    for key in ("address-book cards", "events"):
        parts = [sum(o.items.get(key, 0) for o in half.shared) for half in halves]
        assert all(parts) and sum(parts) == sum(o.items.get(key, 0) for o in whole.shared)


def test_a_card_file_with_the_bytes_of_a_book_card_is_not_parsed_again(
    members: Members, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    different = card_file(members, cards(members)[7])
    members = {**members, different: cards(members)[7].replace(b"\r\nUID:", b"\r\nNICKNAME:Other\r\nUID:", 1)}
    parsed: list[str] = []
    original = vobject.readComponents

    def counted(stream: Any) -> Iterator[Any]:
        parsed.append(stream.getvalue())
        return original(stream)

    monkeypatch.setattr(vobject, "readComponents", counted)
    report = check.check_archive(forge(tmp_path, members), processes=1)
    book = len(cards(members))
    assert report.items["cards"] == report.items["address-book cards"] == book
    assert len(parsed) == book + 1  # each card of the book, and the one file that differs from its card


def test_two_processes_start_a_helper_and_one_does_not(
    members: Members, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Helper] = []

    class Recorded(Helper):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(check, "Helper", Recorded)
    path = forge(tmp_path, members)
    check.check_archive(path, processes=1)
    assert not started
    check.check_archive(path, processes=2)
    assert len(started) == 1 and started[0].process.returncode == 0


def test_the_helper_is_stopped_when_the_archive_does_not_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Helper] = []

    class Recorded(Helper):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(check, "Helper", Recorded)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all" * 100)
    with pytest.raises(InvalidInput, match="not a readable ZIP archive"):
        check.check_archive(junk, processes=2)
    assert started[0].process.returncode is not None  # ended (killed or finished), not left running


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("kill", "the second process was killed by SIGKILL (out of memory?)"),
        ("raise", "the second process failed (exit status 1): RuntimeError: the parser met something"),
        ("mute", "the second process ended without an answer"),
    ],
)
def test_a_helper_that_dies_is_one_line_not_a_hang(
    members: Members, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: FlaskCliRunner, how: str, said: str
) -> None:
    path = forge(tmp_path, members)
    monkeypatch.setattr(check, "WORKER", "tests.formats.dying_check_worker")
    monkeypatch.setenv("DYING_CHECK_WORKER", how)
    with pytest.raises(HelperFailed) as caught:
        check.check_archive(path, processes=2)
    assert str(caught.value).startswith(said) and "\n" not in str(caught.value)
    result = runner.invoke(args=["verify", "--processes", "2", str(path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert f"{path}: not checked: {said}" in result.output and "--processes 1" in result.output


def test_two_processes_only_for_a_large_archive_on_two_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = tmp_path / "small.zip", tmp_path / "large.zip"
    small.write_bytes(b"x" * (check.TWO_PROCESSES_FROM - 1))
    with large.open("wb") as f:
        f.truncate(check.TWO_PROCESSES_FROM)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert (check.processes_for(small), check.processes_for(large)) == (1, 2)
    assert check.processes_for(tmp_path / "missing.zip") == 1  # opening it says what is wrong
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert check.processes_for(large) == 1


# What verify's second process has no use for: the writers (`exporters.archive.layout` brings them all),
# and the store's and the web app's libraries.
NOT_FOR_CHECKING = (
    "exporters.archive.layout",
    "exporters.archive.writer",
    "exporters.ical.writer",
    "exporters.markdown.writer",
    "sqlalchemy",
    "flask",
    "boto3",
)


def test_the_check_worker_checks_its_share_without_loading_the_writers(members: Members, tmp_path: Path) -> None:
    path = forge(tmp_path, members)
    answer, modules = run_helper(check.WORKER, [os.fspath(path), "1", "2", str(RUN)], tmp_path)
    half = check.Partial.from_json(answer["partial"])
    assert half.items == check.check_share(path, check.Share(1, 2), RUN).items and half.items["cards"] > 0
    assert loaded_of(modules, ["vobject", "ical", "icalendar", "yaml"]) == ["ical", "icalendar", "vobject", "yaml"]
    assert loaded_of(modules, NOT_FOR_CHECKING) == []
