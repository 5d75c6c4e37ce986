"""The verify memo: a check parses only what no earlier check verified, and finds what it found before.

Why: `check_archive(memo_dir=...)` skips cards, notes and calendar event groups
whose exact bytes (and calendar header) passed an earlier check with the same
parsers (`exporters.archive.check_memo`). These tests prove the saving (through
the counts the report gives, not timing) and the safety: a changed item is
parsed and its problem found, a memo of other parser versions is not used, a
damaged or locked memo means a full check, and a failing check adds nothing.
Tests marked slow check a whole archive (TYPICAL with 400 events, as in
tests/formats/test_check_split.py) in full at least once (~1 s each).
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from account.sample import generate_account
from errors import InvalidInput
from exporters.archive import check, check_memo
from exporters.archive.check import Report
from exporters.archive.places import ADDRESS_BOOK
from exporters.archive.reader import ArchiveReader
from tests.formats.test_check_split import (
    RUN,
    SIZE,
    Members,
    archive_members,
    bad_start,
    calendar,
    card_file,
    cards,
    change_event,
    forge,
    notes,
    replace_card,
    without,
)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Members:
    return archive_members(generate_account("memo@example.com", SIZE, seed=7), tmp_path_factory.mktemp("memo"))


@pytest.fixture(autouse=True)
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "CHUNK", RUN)  # many runs in a small calendar; passed on to the second process


def forge_in(folder: Path, members: Members) -> Path:
    """An archive of `members` in a folder of its own (each forged archive has the same name)."""
    folder.mkdir()
    return forge(folder, members)


def verify(path: Path, memo: Path | None, processes: int = 1, *, fresh: bool = False) -> Report:
    return check.check_archive(path, processes=processes, memo_dir=memo, fresh=fresh)


Checked = tuple[Path, Path, Report]


@pytest.fixture(scope="module")
def first_check(members: Members, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """The intact archive of `members`, a memo that has checked it once, and that check's report.

    Made once per module (a full check of the archive) and copied by `checked_once`: a memo is
    a folder with one SQLite file in it, so each test gets a memo of its own to change.
    """
    folder = tmp_path_factory.mktemp("first-check")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(check, "CHUNK", RUN)
        memo = folder / "memo"
        path = forge(folder, members)
        return path, memo, verify(path, memo)


def checked_once(first_check: Checked, folder: Path) -> Checked:
    """The archive, a memo in `folder` that has checked it once, and that check's report (copies of `first_check`)."""
    path, memo, report = first_check
    return Path(shutil.copy2(path, folder / path.name)), Path(shutil.copytree(memo, folder / "memo")), report


def figures(report: Report) -> tuple[object, ...]:
    return dict(report.files), +report.items, report.counts()


def whole(members: Members) -> int:
    """Fewest items a check without a memo parses: every book card, every note and every event
    (the overrides of a series are VEVENTs of their own on top)."""
    return len(cards(members)) + len(notes(members)) + SIZE.events


def every_item(report: Report) -> int:
    """Items a check without a memo parses: address-book cards, card files unlike them, VEVENTs, notes."""
    return report.parsed.total() + report.known.total()


def rows(memo: Path) -> set[tuple[bytes, int]]:
    with sqlite3.connect(memo / check_memo.FILENAME) as db:
        return set(db.execute("SELECT key, seen FROM verdicts"))


def group_sizes(ics: bytes) -> list[int]:
    """VEVENTs in each event group of a calendar, in order (a series and the overrides after it)."""
    sizes: list[int] = []
    for event in ics.split(b"BEGIN:VEVENT")[1:]:
        if b"\r\nRECURRENCE-ID" in event and sizes:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


def group_of(ics: bytes, index: int) -> int:
    """Which group holds the calendar's event `index`."""
    sizes, seen = group_sizes(ics), 0
    for group, size in enumerate(sizes):
        seen += size
        if index < seen:
            return group
    raise IndexError(index)


def summary_edited(event: bytes) -> bytes:
    return re.sub(rb"\r\nSUMMARY:", b"\r\nSUMMARY:Edited ", event, count=1)


def next_day(members: Members) -> tuple[Members, dict[str, int]]:
    """The archive after a day of small edits (one card, two events in different groups, one note),
    and how many items of each kind a check must parse again."""
    edited = dict(members)
    replace_card(edited, 11, lambda c: c.replace(b"\r\nUID:", b"\r\nNOTE:called back\r\nUID:", 1), own_file=True)
    name = calendar(members)
    sizes = group_sizes(members[name])
    first, second = 5, sum(sizes[: len(sizes) // 2])  # an event early on, and the first of the middle group
    groups = {group_of(members[name], first), group_of(members[name], second)}
    assert len(groups) == 2
    change_event(edited, first, summary_edited)
    change_event(edited, second, summary_edited)
    note = notes(members)[3]
    edited[note] = edited[note].replace(b"\n---\n", b"\n---\nEdited.\n", 1)
    return edited, {"cards": 1, "events": sum(sizes[g] for g in groups), "notes": 1}


@pytest.mark.slow
def test_a_warm_memo_parses_only_what_changed_in_the_next_archive(members: Members, tmp_path: Path) -> None:
    memo = tmp_path / "memo"
    today = forge(tmp_path, members)
    cold = verify(today, memo)
    assert cold.memo and not cold.known and cold.parsed.total() >= whole(members)
    assert figures(verify(today, None)) == figures(cold)
    edited, changed = next_day(members)
    tomorrow = forge_in(tmp_path / "tomorrow", edited)
    for processes in (1, 2):
        yesterdays = Path(shutil.copytree(memo, tmp_path / f"memo{processes}"))
        warm = verify(tomorrow, yesterdays, processes)
        assert dict(warm.parsed) == changed, processes  # the edited card's file has the book card's bytes
        assert every_item(warm) == every_item(cold)
        assert figures(warm) == figures(verify(tomorrow, None))
        assert verify(tomorrow, yesterdays, processes).parsed.total() == 0  # what it verified is known now


def restamped(members: Members, stamp: bytes) -> Members:
    """The same archive exported at another time: every DTSTAMP (the export's time where an event has none) moved."""
    name = calendar(members)
    return {**members, name: re.sub(rb"\r\nDTSTAMP:\d{8}T\d{6}Z\r\n", b"\r\nDTSTAMP:" + stamp + b"\r\n", members[name])}


@pytest.mark.slow
def test_events_that_differ_only_in_a_valid_dtstamp_are_known_and_an_invalid_one_is_parsed(
    members: Members, first_check: Checked, tmp_path: Path
) -> None:
    _, memo, cold = checked_once(first_check, tmp_path)
    assert cold.parsed["events"] > 0
    later = forge_in(tmp_path / "later", restamped(members, b"20991231T235959Z"))
    warm = verify(later, memo)
    assert warm.parsed["events"] == 0 and figures(warm) == figures(cold)
    # Not a real time (month 13): kept in the key, so the memo does not know it; parsed, and refused.
    odd = forge_in(tmp_path / "odd", restamped(members, b"20261301T000000Z"))
    with pytest.raises(InvalidInput, match="Failed to validate '20261301T000000Z'"):
        verify(odd, memo)


@pytest.mark.slow
def test_an_item_that_changed_is_parsed_again_and_its_problem_found(members: Members, tmp_path: Path) -> None:
    memo = tmp_path / "memo"
    verify(forge(tmp_path, members), memo)
    broken = dict(members)
    change_event(broken, 52, bad_start)
    card = cards(broken)[42]
    damaged_card = card_file(broken, card)
    broken[damaged_card] = without(b"FN")(card)  # a card file unlike its card
    note = notes(broken)[2]
    broken[note] = re.sub(rb"\nid: [^\n]*", b"", broken[note], count=1)
    path = forge_in(tmp_path / "broken", broken)
    with pytest.raises(InvalidInput) as without_memo:
        verify(path, None)
    said = [where for where, _ in without_memo.value.problems]
    assert {calendar(broken), damaged_card, note} <= set(said)  # and the figures these files do not bear out
    for processes in (1, 2):
        with pytest.raises(InvalidInput) as with_memo:
            verify(path, memo, processes)
        assert with_memo.value.problems == without_memo.value.problems


@pytest.mark.slow
def test_bytes_verified_as_a_note_are_not_taken_for_a_card(
    members: Members, first_check: Checked, tmp_path: Path
) -> None:
    _, memo, _ = checked_once(first_check, tmp_path)
    odd = dict(members)
    odd[card_file(members, cards(members)[3])] = members[notes(members)[0]]
    path = forge_in(tmp_path / "odd", odd)
    with pytest.raises(InvalidInput) as without_memo:
        verify(path, None)
    assert any(where.startswith("contacts/cards/") for where, _ in without_memo.value.problems)
    with pytest.raises(InvalidInput) as with_memo:
        verify(path, memo)
    assert with_memo.value.problems == without_memo.value.problems


@pytest.mark.slow
def test_a_memo_of_another_check_or_parser_version_is_emptied_not_used(
    first_check: Checked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, memo, first = checked_once(first_check, tmp_path)
    everything = first.parsed.total()
    assert verify(path, memo).parsed.total() == 0
    monkeypatch.setattr(check, "CHECK_VERSION", check.CHECK_VERSION + 1)
    assert verify(path, memo).parsed.total() == everything
    versions = check_memo.parser_versions()
    monkeypatch.setattr(check_memo, "parser_versions", lambda: {**versions, "icalendar": "0.0.1"})
    again = verify(path, memo)
    assert again.parsed.total() == everything and not again.known
    monkeypatch.undo()
    monkeypatch.setattr(check, "CHUNK", RUN)
    assert verify(path, memo).parsed.total() == everything  # the older stamp's rows went when it was emptied


@pytest.mark.slow
def test_fresh_parses_everything_and_still_refreshes_the_memo(first_check: Checked, tmp_path: Path) -> None:
    path, memo, first = checked_once(first_check, tmp_path)
    everything = first.parsed.total()
    before = rows(memo)
    for processes in (1, 2):
        fresh = verify(path, memo, processes, fresh=True)
        assert fresh.parsed.total() == everything and not fresh.known
    after = rows(memo)
    assert {key for key, _ in after} == {key for key, _ in before}
    assert {seen for _, seen in after} == {3}  # each key stamped by the last check that used it


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_a_failing_check_adds_nothing_to_the_memo(members: Members, tmp_path: Path, processes: int) -> None:
    memo = tmp_path / "memo"
    broken = dict(members)
    replace_card(broken, 20, without(b"UID"), own_file=True)
    change_event(broken, 80, bad_start)
    path = forge(tmp_path, broken)
    with pytest.raises(InvalidInput):
        verify(path, memo, processes)
    assert rows(memo) == set()
    verify(forge_in(tmp_path / "intact", members), memo)
    known = rows(memo)
    with pytest.raises(InvalidInput):
        verify(path, memo, processes)
    assert rows(memo) == known  # nothing added, nothing marked as used


@pytest.mark.slow
def test_a_damaged_memo_file_means_a_full_check_and_one_log_line(
    members: Members, first_check: Checked, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, memo, first = checked_once(first_check, tmp_path)
    everything = figures(first)
    memo.joinpath(check_memo.FILENAME).write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, "lifeboat.check_memo"):
        report = verify(path, memo)
    assert figures(report) == everything and not report.memo
    assert len(caplog.records) == 1 and "checking without it" in caplog.records[0].getMessage()
    assert verify(path, memo).parsed.total() >= whole(members)  # a new memo, from scratch


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_a_memo_damaged_inside_is_noticed_during_the_check_which_starts_again_without_it(
    first_check: Checked, tmp_path: Path, caplog: pytest.LogCaptureFixture, processes: int
) -> None:
    path, memo, first = checked_once(first_check, tmp_path)
    everything = figures(first)
    file = memo / check_memo.FILENAME
    data = bytearray(file.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[3 * page :] = b"\xa5" * (len(data) - 3 * page)  # the schema, meta and the rows' root intact; the rows not
    file.write_bytes(bytes(data))
    with sqlite3.connect(file) as db:  # it still opens: the damage is met looking keys up
        assert db.execute("SELECT value FROM meta WHERE name = 'checks'").fetchone() == ("1",)
    with caplog.at_level(logging.WARNING, "lifeboat.check_memo"):
        report = verify(path, memo, processes)
    assert figures(report) == everything and not report.memo
    assert len(caplog.records) == 1 and ".snapshot-" in caplog.records[0].getMessage()  # met looking keys up
    assert not list(memo.glob(".snapshot-*"))


@pytest.mark.slow
def test_a_locked_memo_means_a_check_without_it(
    first_check: Checked,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, memo, first = checked_once(first_check, tmp_path)
    everything = figures(first)
    monkeypatch.setattr(check_memo, "BUSY_TIMEOUT", 0.05)
    other = sqlite3.connect(memo / check_memo.FILENAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another check writing, for longer than this one waits
    try:
        with caplog.at_level(logging.WARNING, "lifeboat.check_memo"):
            report = verify(path, memo)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert figures(report) == everything and not report.memo
    assert len(caplog.records) == 1
    assert verify(path, memo).parsed.total() == 0  # a locked file is not removed


@pytest.mark.slow
def test_the_memo_is_the_owners_alone_and_leaves_no_snapshot_behind(members: Members, tmp_path: Path) -> None:
    memo = tmp_path / "instance" / "verify-memo"
    path = forge(tmp_path, members)
    verify(path, memo, 2)
    verify(path, memo, 2)
    assert stat.S_IMODE(memo.stat().st_mode) == 0o700
    assert stat.S_IMODE((memo / check_memo.FILENAME).stat().st_mode) == 0o600
    assert [p.name for p in memo.iterdir()] == [check_memo.FILENAME]


def test_the_memo_keeps_the_keys_of_the_last_checks_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each check, at most KEEP_FACTOR times its keys (the least recently used go, a check at a time)."""
    monkeypatch.setattr(check_memo, "KEEP_FACTOR", 2)
    monkeypatch.setattr(check_memo, "KEEP_AT_LEAST", 0)

    def keys(tag: str) -> dict[bytes, tuple[int, int]]:
        return {bytes([i]) * 31 + tag.encode(): (1, 0) for i in range(10)}

    memo = check_memo.MemoFile.open(tmp_path, "stamp")
    assert memo is not None
    with memo:
        memo.record(keys("a"), [])
        memo.record(keys("b"), [])
        memo.record(keys("c"), list(keys("a")))  # "a" used again: kept, "b" is the least recently used
        assert len(rows(tmp_path)) == 30  # within 2x the 20 keys this check used: nothing goes
        memo.record(keys("d"), [])
    # 2x 10 keys, rounded up to whole checks: "c" and "a" (used by the same check) stay together.
    assert {key for key, _ in rows(tmp_path)} == set(keys("a")) | set(keys("c")) | set(keys("d"))


def _verify_output(runner: FlaskCliRunner, path: Path, *args: str) -> str:
    result = runner.invoke(args=["verify", *args, str(path)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_verify_remembers_in_the_instance_folder_says_so_and_fresh_parses_all(
    members: Members, tmp_path: Path, runner: FlaskCliRunner
) -> None:
    path = forge(tmp_path, members)
    first = _verify_output(runner, path)
    said = re.search(r"\n  parsed ([\d,]+) items; none were verified before with the same parser versions\n$", first)
    assert said, first
    total = int(said[1].replace(",", ""))
    second = _verify_output(runner, path, "--processes", "2")
    assert (
        f"  parsed 0 items; {total:,} were verified before with the same parser versions (use --fresh to parse all)"
        in second
    )
    fresh = _verify_output(runner, path, "--fresh")
    assert fresh.endswith(f"\n  parsed everything (--fresh): {total:,} items, remembered for the next check\n")
    assert (Path(runner.app.instance_path) / "verify-memo" / check_memo.FILENAME).is_file()
    assert first.splitlines()[:-1] == second.splitlines()[:-1]  # the report itself is the same


def test_export_check_remembers_what_verify_then_need_not_parse(runner: FlaskCliRunner, tmp_path: Path) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 0, result.output
    output = _verify_output(runner, Path(result.output.splitlines()[0]))
    assert "  parsed 0 items; " in output and "(use --fresh to parse all)" in output


@pytest.mark.slow
def test_notes_and_card_files_known_from_earlier_checks_are_not_read(
    members: Members, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known note or card file counts from its listed SHA-256, which opening the archive has checked."""
    memo = tmp_path / "memo"
    changed = dict(members)
    card = cards(members)[9]
    changed[card_file(members, card)] = card.replace(b"\r\nUID:", b"\r\nNICKNAME:Other\r\nUID:", 1)
    path = forge(tmp_path, changed)
    verify(path, memo)
    read: list[str] = []
    original = ArchiveReader.member_chunks

    def recorded(self: ArchiveReader, name: str) -> Iterator[bytes]:
        read.append(name)
        return original(self, name)

    monkeypatch.setattr(ArchiveReader, "member_chunks", recorded)
    report = verify(path, memo)
    assert report.known["notes"] == len(notes(members)) and report.known["cards"] == len(cards(members)) + 1
    assert not [n for n in read if n.startswith(("notes/", "contacts/cards/"))]
    assert ADDRESS_BOOK in read
