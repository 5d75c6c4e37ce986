"""manifest.json's `changes` section (issue 16): every item the export had to change, with its reason.

Archives carry each item exactly except where a name must fit every file
system; each such change is listed (kind, item id, field, path, reason),
counted, stated as "0 changes" when there are none, signed with the manifest,
read as a stream, and absent from archives made before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from account.records import Account, Attachment, Calendar, CalendarInfo, Contact, Note
from exporters.archive.changes import (
    ORIGINAL_SHOWN,
    Change,
    ChangeLog,
    count_of,
    encode_change,
    rename_reason,
    shown_name,
)
from exporters.archive.manifest import (
    KEPT_CHANGES,
    MANIFEST_NAME,
    README_NAME,
    RESERVED_NAMES,
    SIGNATURE_NAME,
    ArchiveError,
    Manifest,
    ManifestFile,
    parse_manifest,
    read_changes_section,
    read_manifest,
)
from exporters.archive.reader import verify_archive
from exporters.archive.signature import new_signing_keys, parse_signing_keys
from exporters.archive.writer import Entry, write_archive
from jobs.export import ExportResult, export_user
from store import Database
from store.accounts import find_user, replace_account

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def export(db: Database, tmp_path: Path) -> Any:
    """Import `account` and export it as a run does; returns the result and manifest.json as JSON."""

    def run(account: Account, **options: Any) -> tuple[ExportResult, dict[str, Any], str]:
        with db.session(write=True) as session:
            replace_account(session, account)
        with db.session() as session:
            user = find_user(session, account.email)
            assert user is not None
            result = export_user(session, user, tmp_path, now=NOW, **options)
        assert result.info.path is not None
        with zipfile.ZipFile(result.info.path) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            readme = archive.read(README_NAME).decode()
        return result, manifest, readme

    return run


@given(st.lists(st.text(), min_size=6, max_size=6))
def test_a_change_is_encoded_as_json_dumps_with_an_indent_of_two_encodes_it(texts: list[str]) -> None:
    for original in (texts[5], ""):  # entries with the name as typed, and as archives before it had them
        kind, item, field, path, reason = texts[:5]
        change = Change(kind, item, field, path, reason, original)
        assert encode_change(change) == json.dumps(change.as_dict(), ensure_ascii=False, indent=2)


def test_alice_lists_each_renamed_file_with_its_item_and_reason(export: Any, alice: Account) -> None:
    result, manifest, readme = export(alice)
    section = manifest["changes"]
    assert (section["count"], section["summary"]) == (3, "3 changes")
    by_item = {(c["kind"], c["item"]): c for c in section["items"]}
    assert set(by_item) == {("contact", "c-0001"), ("note", "n-0002"), ("note", "n-0003")}
    numbered = by_item[("note", "n-0002")]
    assert numbered["path"] == "notes/Home/Shopping list (2).md" and numbered["field"] == "file name"
    assert numbered["reason"].startswith("numbered: same name as another note;")  # two notes "Shopping list"
    assert "front matter keeps the exact title" in numbered["reason"]
    assert numbered["original"] == "Shopping list"
    escaping = by_item[("note", "n-0003")]
    assert escaping["reason"].startswith(
        "characters Windows does not allow in names (* / : ? \\) replaced by _; a dot at the start replaced by _"
    )
    assert ".." not in escaping["path"].split("/") and escaping["original"] == alice.notes[2].title
    assert "the card keeps the exact name (FN)" in by_item[("contact", "c-0001")]["reason"]
    assert list(manifest)[-2:] == ["changes", "files"]  # the section is part of what the signature covers
    assert "3 changes had to be made to fit every system: 3 file names." in readme
    assert 'manifest.json lists all 3 under "changes",\nwith the name as typed and the reason.' in readme
    assert len(result.changes) == 3 and [c.item for c in result.changes.first(2)] == ["c-0001", "n-0002"]


def test_an_account_whose_names_fit_states_0_changes(export: Any) -> None:
    plain = Account(
        email="plain@example.com",
        contacts=(Contact(uid="u1", formatted_name="Ada Lovelace"),),
        calendars=(Calendar(CalendarInfo("Home")),),
        notes=(Note(id="n1", title="Groceries", body="milk\n", notebook="Home"),),
    )
    result, manifest, readme = export(plain)
    assert manifest["changes"] == {"count": 0, "summary": "0 changes: every item is carried exactly", "items": []}
    assert "Nothing had to be changed to fit every system." in readme
    assert len(result.changes) == 0


def test_shortened_names_folders_and_numbered_attachments_are_each_listed(export: Any) -> None:
    long_title = "Minutes " * 40
    note = Note(
        id="n1",
        title=long_title,
        body="x\n",
        notebook="/".join(f"Level {i} of a very deeply nested notebook" for i in range(4)),
        attachments=(Attachment("scan.png", "image/png", b"1"), Attachment("SCAN.png", "image/png", b"2")),
    )
    calendar = Calendar(CalendarInfo("Work: shifts?"))
    result, manifest, _ = export(Account(email="long@example.com", calendars=(calendar,), notes=(note,)))
    changes = [(c["kind"], c["item"], c["field"], c["reason"]) for c in manifest["changes"]["items"]]
    assert changes[0][:3] == ("calendar", "Work: shifts?", "file name")
    assert changes[0][3].startswith("characters Windows does not allow in names (: ?) replaced by _;")
    (title,) = [c[3] for c in changes if c[:3] == ("note", "n1", "file name")]
    assert "shortened to fit the path limits every system accepts" in title  # and its trailing space went
    folder = next(c for c in changes if c[2] == "folder")
    assert folder[3].startswith("only 2 of its 4 notebook levels fit the path limit; shortened to fit")
    assert changes[-1][:2] == ("attachment", "n1/SCAN.png")
    assert changes[-1][3].startswith(  # scan.png and SCAN.png
        "numbered: name differs only in case from another attachment of this note's (Windows and macOS"
    )
    assert manifest["changes"]["count"] == len(changes) == len(result.changes) == 4  # scan.png kept its name


def test_the_changes_are_the_same_bytes_with_and_without_the_cache(export: Any, alice: Account, tmp_path: Path) -> None:
    _, first, _ = export(alice)
    _, again, _ = export(alice, cache_dir=tmp_path / "cache")
    reused, third, _ = export(alice, cache_dir=tmp_path / "cache")
    assert sum(reused.reuse.hits.values()) > 0
    assert first["changes"] == again["changes"] == third["changes"]


def test_rename_reasons_say_what_happened() -> None:
    assert rename_reason("Plans", "Plans", fallback="Untitled") is None
    assert rename_reason("Report (2)", "Report (2)", fallback="Untitled") is None  # typed so: not numbered
    assert rename_reason("Report (2)", "Report (2) (2)", fallback="Untitled") == (
        "numbered: another item has the same name (names ignore case on some systems)"
    )
    assert rename_reason("", "Untitled", fallback="Untitled") == "it has no name: named 'Untitled'"
    assert rename_reason("CON", "CON_", fallback="Untitled") == "CON is a device name on Windows: _ added"


@pytest.mark.parametrize(
    ("typed", "placed", "reason"),
    [
        ("a: b?", "a_ b_", "characters Windows does not allow in names (: ?) replaced by _"),
        ("x\u202egnp.exe", "x_gnp.exe", "control or invisible characters (such as a line break or a direction mark)"),
        ("line\nbreak", "line_break", "control or invisible characters"),
        ("Dr. Who.", "Dr. Who", "dots or spaces at the end removed (Windows drops them)"),
        ("trailing  ", "trailing", "dots or spaces at the end removed (Windows drops them)"),
        (".hidden", "_hidden", "a dot at the start replaced by _ (it hides a file on macOS and Linux)"),
        ("nul.txt", "nul_.txt", "nul is a device name on Windows: _ added"),
        ("e\u0301te\u0301", "\u00e9t\u00e9", "written in composed Unicode form (NFC)"),
        ("...", "Untitled", "nothing usable was left of it: named 'Untitled'"),
        ("   ", "Untitled", "it has no name: named 'Untitled'"),
    ],
)
def test_each_cause_of_a_rename_has_a_reason_of_its_own(typed: str, placed: str, reason: str) -> None:
    found = rename_reason(typed, placed, fallback="Untitled")
    assert found is not None and found.startswith(reason)
    assert "made safe for every system" not in found


def test_two_causes_in_one_name_are_both_given_in_the_order_they_were_applied() -> None:
    assert rename_reason("COM1: ports.", "COM1_ ports", fallback="Untitled") == (
        "characters Windows does not allow in names (:) replaced by _; "
        "dots or spaces at the end removed (Windows drops them)"
    )
    assert rename_reason(".con", "_con", fallback="Untitled") == (
        "a dot at the start replaced by _ (it hides a file on macOS and Linux)"
    )


def test_the_name_as_typed_is_kept_cut_short_and_with_invisible_characters_written_as_escapes() -> None:
    assert shown_name("a: b?") == "a: b?"
    assert shown_name("evil\u202egnp.exe\nnext line\x00") == "evil\\u202egnp.exe\\nnext line\\x00"
    long = shown_name("ü" * 500)
    assert len(long) == ORIGINAL_SHOWN and long.endswith("ü…")
    assert shown_name("\ud800") == "\\ud800"  # a lone surrogate cannot be written as UTF-8: escaped
    log = ChangeLog()
    log.name("note", "n1", "Plans\u2028" + "x" * 300, "Plans_" + "x" * 60, "notes/Plans_x.md", fallback="Untitled")
    (entry,) = [json.loads(text) for text in log.encoded()]
    assert list(entry) == ["kind", "item", "field", "original", "path", "reason"]
    assert entry["original"].startswith("Plans\\u2028xxx") and entry["original"].endswith("…")
    assert "\u2028" not in log.first(1)[0].line() and 'file name "Plans\\u2028' in log.first(1)[0].line()


def test_a_note_renamed_in_its_title_and_its_folder_is_two_changes_and_the_readme_says_which(export: Any) -> None:
    note = Note(id="n1", title="Plans?", body="x\n", notebook="Work: 2026")
    _, manifest, readme = export(Account(email="two@example.com", notes=(note,)))
    entries = manifest["changes"]["items"]
    assert [(c["field"], c["original"]) for c in entries] == [("file name", "Plans?"), ("folder", "Work: 2026")]
    assert manifest["changes"]["count"] == 2
    assert "2 changes had to be made to fit every system: 1 file name and 1 note's folder." in readme
    assert "file names had to be changed" not in readme


def test_a_notebook_with_empty_levels_is_listed_as_a_folder_change_and_one_that_fits_is_not(export: Any) -> None:
    notes = (
        Note(id="n1", title="A", body="x\n", notebook="/Home//Garden/"),
        Note(id="n2", title="B", body="x\n", notebook="Home/Garden"),
    )
    _, manifest, _ = export(Account(email="levels@example.com", notes=notes))
    (entry,) = manifest["changes"]["items"]
    assert (entry["item"], entry["field"], entry["original"]) == ("n1", "folder", "/Home//Garden/")
    assert entry["path"] == "notes/Home/Garden/A.md"
    assert entry["reason"].startswith("empty levels left out (a / at either end or two in a row); ")
    assert entry["reason"].endswith("the front matter keeps the exact notebook")


# --- reading it back: streamed, checked, optional ------------------------------------------------


def _manifest_with(changes: ChangeLog) -> bytes:
    head = Manifest(
        NOW, [ManifestFile("a.md", "0" * 64, 1)], meta={"user": "x@example.com", "changes": changes.as_dict()}
    )
    return b"".join(head.json_chunks())


def test_a_long_list_spills_to_disk_streams_as_json_dumps_writes_it_and_is_read_as_a_stream(tmp_path: Path) -> None:
    log = ChangeLog(scratch=tmp_path, limit=100)
    for i in range(KEPT_CHANGES + 50):
        kind = ("note", "contact", "calendar")[i % 3]  # archive order groups them: contacts, calendars, notes
        log.add(Change(kind, f"id-{i}", "file name", f"p/{i}.md", "numbered: ünïcode kept"))
    data = _manifest_with(log)
    items = [json.loads(text) for text in log.encoded()]
    assert [i["kind"] for i in items] == sorted((i["kind"] for i in items), key=["contact", "calendar", "note"].index)
    document = json.loads(data)
    assert document["changes"]["items"] == items
    assert data.decode() == json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    parsed = read_manifest(data[i : i + 1000] for i in range(0, len(data), 1000))
    assert parsed.meta["changes"] == {"count": len(items), "summary": f"{len(items)} changes", "items_elided": True}
    assert count_of(parsed.meta) == len(items)
    few = ChangeLog()
    few.add(Change("note", "n", "file name", "notes/n.md", "why"))
    assert parse_manifest(_manifest_with(few)).meta["changes"]["items"] == [json.loads(next(few.encoded()))]
    log.close()


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"count": 2, "summary": "2 changes", "items": []}, "changes lists 0 items, but its count says 2"),
        ({"count": 1, "summary": "1 change", "items": [{"kind": "note"}]}, r"changes.items\[0\] is not a change"),
        ({"count": "none", "summary": "", "items": []}, "changes.count is not a whole number"),
        ([], "changes is not an object"),
    ],
)
def test_verify_refuses_a_changes_section_that_does_not_hold_together(section: Any, words: str) -> None:
    document = {"format": "lifeboat-archive", "format_version": 1, "created_at": "2026-11-25T04:00:00Z"}
    data = json.dumps({**document, "changes": section, "files": []}).encode()
    with pytest.raises(ArchiveError, match=words):
        parse_manifest(data)


def test_entries_made_before_original_was_kept_still_verify_but_an_original_that_is_not_text_does_not() -> None:
    document = {"format": "lifeboat-archive", "format_version": 1, "created_at": "2026-11-25T04:00:00Z"}
    old = {"kind": "note", "item": "n1", "field": "file name", "path": "notes/a_.md", "reason": "why"}
    section = {"count": 1, "summary": "1 change", "items": [old]}
    assert parse_manifest(json.dumps({**document, "changes": section, "files": []}).encode()).meta["changes"] == section
    section["items"] = [{**old, "original": 7}]
    with pytest.raises(ArchiveError, match=r"changes.items\[0\].original is not text"):
        parse_manifest(json.dumps({**document, "changes": section, "files": []}).encode())


def test_an_archive_made_before_the_section_verifies_and_says_nothing_about_changes() -> None:
    out = io.BytesIO()
    write_archive(out, [Entry("notes/a.md", [b"---\n"])], {"user": "x@example.com"}, NOW)
    manifest = verify_archive(io.BytesIO(out.getvalue()))
    assert "changes" not in manifest.meta and count_of(manifest.meta) is None
    with zipfile.ZipFile(out) as archive:
        assert "changed" not in archive.read(README_NAME).decode()


def test_the_signature_covers_the_changes_section() -> None:
    key = parse_signing_keys(new_signing_keys(NOW.date()))
    log = ChangeLog()
    log.add(Change("note", "n1", "file name", "notes/a_ b.md", "made safe for every system"))
    out = io.BytesIO()
    write_archive(
        out, [Entry("notes/a_ b.md", [b"x"])], {"user": "x@example.com"}, NOW, signer=key, changes=log.as_dict
    )
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[MANIFEST_NAME] = members[MANIFEST_NAME].replace(b"made safe for every system", b"nothing to see here......")
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert SIGNATURE_NAME in members and all(name in members for name in RESERVED_NAMES)
    with pytest.raises(ArchiveError, match="signature"):
        verify_archive(io.BytesIO(forged.getvalue()), keys=key.ring, require_signature=True)


def test_a_parsed_manifest_with_too_many_changes_to_keep_cannot_be_written_again(tmp_path: Path) -> None:
    log = ChangeLog()
    for i in range(KEPT_CHANGES + 1):
        log.add(Change("note", f"n{i}", "file name", f"notes/{i}.md", "why"))
    meta = dict(parse_manifest(_manifest_with(log)).meta)
    with pytest.raises(ArchiveError, match="read back without its items"):
        write_archive(io.BytesIO(), [], meta, NOW)
    assert dataclasses.is_dataclass(Change)


def test_a_window_of_the_changes_past_the_kept_ones_is_read_in_the_pass_that_checks_every_item() -> None:
    log = ChangeLog()
    for i in range(KEPT_CHANGES + 100):
        log.add(Change("note", f"n{i}", "file name", f"notes/{i}.md", "why", f"typed {i}"))
    data = _manifest_with(log)
    every = [json.loads(text) for text in log.encoded()]
    for start in (0, 300, KEPT_CHANGES + 100, 10_000):
        section = read_manifest([data], changes_from=start).meta["changes"]
        assert section["items"] == every[start : start + KEPT_CHANGES]
        assert (section["count"], section["items_from"], section["items_elided"]) == (len(every), start, True)
    few = ChangeLog()
    few.add(Change("note", "n", "file name", "notes/n.md", "why"))
    whole = read_manifest([_manifest_with(few)], changes_from=0).meta
    with pytest.raises(ArchiveError, match="read back without its items"):  # a window is never the whole list
        write_archive(io.BytesIO(), [], dict(whole), NOW)
    broken = data.replace(b'"reason": "why"', b'"reason": 7', 1)  # the first item: outside the window
    with pytest.raises(ArchiveError, match=r"changes.items\[0\] is not a change"):
        read_manifest([broken], changes_from=300)
    with pytest.raises(ValueError, match="changes_from"):
        read_manifest([data], changes_from=-1)


def test_the_changes_section_alone_is_the_window_a_whole_read_keeps_and_the_file_list_after_it_is_not_read() -> None:
    log = ChangeLog()
    for i in range(KEPT_CHANGES + 100):
        log.add(Change("note", f"n{i}", "file name", f"notes/{i}.md", "why", f"typed {i}"))
    data = _manifest_with(log)
    assert data.index(b'"changes"') < data.index(b'"files"')  # the order the writer gives
    for start in (0, 300, 10_000):
        whole = read_manifest([data], changes_from=start).meta["changes"]
        assert read_changes_section([data[i : i + 97] for i in range(0, len(data), 97)], start) == whole
    cut = data[: data.index(b'"files"') + 20]  # a file list that is cut short is never reached
    assert read_changes_section([cut], 0) == read_manifest([data], changes_from=0).meta["changes"]
    with pytest.raises(ArchiveError, match=r"changes.items\[0\] is not a change"):  # items are checked
        read_changes_section([data.replace(b'"reason": "why"', b'"reason": 7', 1)], 300)
    assert read_changes_section([json.dumps({"format": "lifeboat-archive", "files": []}).encode()], 0) is None


def test_a_numbered_name_says_whether_the_other_has_the_same_name_or_differs_only_in_case(export: Any) -> None:
    # User trial: "another item has the same name (names ignore case on some systems)" was said of both.
    notes = (
        Note(id="n1", title="Plans", body="1\n"),
        Note(id="n2", title="Plans", body="2\n"),  # the same name
        Note(id="n3", title="plans", body="3\n"),  # only the case differs
        Note(id="n4", title="PLANS", body="4\n"),  # again, numbered where the counter left off
        Note(id="n5", title="Plans?", body="5\n"),  # the same once made safe ("Plans_")...
        Note(id="n6", title="Plans*", body="6\n"),  # ...as this one
        Note(id="n7", title="Trip", body="7\n", notebook="Work"),
        Note(id="n8", title="Trip", body="8\n", notebook="work"),  # a notebook differing only in case
    )
    contacts = (Contact(uid="c1", formatted_name="Ann Lee"), Contact(uid="c2", formatted_name="ann lee"))
    calendars = (Calendar(CalendarInfo("Home")), Calendar(CalendarInfo("home")), Calendar(CalendarInfo("home?")))
    _, manifest, _ = export(Account(email="same@example.com", contacts=contacts, calendars=calendars, notes=notes))
    reasons = {(c["kind"], c["item"], c["field"]): c["reason"] for c in manifest["changes"]["items"]}
    case = "(Windows and macOS take them for one name)"
    assert reasons[("note", "n2", "file name")].startswith("numbered: same name as another note;")
    assert reasons[("note", "n3", "file name")].startswith(
        f"numbered: name differs only in case from another note's {case}"
    )
    assert reasons[("note", "n4", "file name")].startswith(
        f"numbered: name differs only in case from another note's {case}"
    )
    assert ("note", "n5", "file name") not in reasons or "numbered" not in reasons[("note", "n5", "file name")]
    assert reasons[("note", "n6", "file name")].startswith(
        "characters Windows does not allow in names (*) replaced by _; "
        "numbered: same name as another note once made safe;"
    )
    assert reasons[("note", "n8", "folder")].startswith(
        f"numbered: name differs only in case from another notebook's {case}"
    )
    assert reasons[("contact", "c2", "file name")].startswith(
        f"numbered: name differs only in case from another contact's {case}"
    )
    assert reasons[("calendar", "home", "file name")].startswith(
        f"numbered: name differs only in case from another calendar's {case}"
    )
    assert "numbered" not in reasons[("calendar", "home?", "file name")]  # home_ is free
    assert not any("another item" in reason for reason in reasons.values())


def test_a_repeat_export_from_the_cache_gives_the_same_numbered_reasons(
    export: Any, alice: Account, tmp_path: Path
) -> None:
    extra = (Note(id="x1", title="shopping LIST", body="x\n", notebook="Home"),)
    account = dataclasses.replace(alice, notes=alice.notes + extra)
    _, first, _ = export(account)
    _, again, _ = export(account, cache_dir=tmp_path / "cache")
    _, third, _ = export(account, cache_dir=tmp_path / "cache")
    assert first["changes"] == again["changes"] == third["changes"]
    assert any("differs only in case" in c["reason"] for c in first["changes"]["items"])
