"""Notes → Markdown files and back: exact round trips and file names safe everywhere."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Attachment, Note
from exporters.archive.paths import PathAllocator, sanitize_component, unsafe_path_reason
from exporters.markdown.reader import MarkdownError, read_note
from exporters.markdown.writer import note_files
from tests.profiles import examples
from tests.strategies.notes import HOSTILE_NAMES, names, notes

ALICE = Path("/work/shared/samples/alice.json")
RESERVED = re.compile(r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[0-9¹²³])", re.IGNORECASE)


def alice_notes() -> tuple[Note, ...]:
    return account_from_dict(json.loads(ALICE.read_text(encoding="utf-8"))).notes


def export(notes_: list[Note] | tuple[Note, ...]) -> tuple[dict[str, bytes], list[str]]:
    """Export notes with one allocator, as one archive would; return files and .md paths."""
    paths = PathAllocator()
    files: dict[str, bytes] = {}
    md_paths = []
    for note in notes_:
        written = note_files(note, paths)
        md_paths.append(written[0][0])
        for path, data in written:
            assert path not in files, f"{path} written twice"
            files[path] = data
    return files, md_paths


def assert_component_is_portable(component: str) -> None:
    """The file-name rules of Windows, macOS and Linux, checked independently of the code."""
    assert component not in ("", ".", ".."), component
    assert not set('<>:"/\\|?*') & set(component), component
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in component), component
    assert not component.endswith((".", " ")), component
    assert not component.startswith("."), component
    assert not RESERVED.fullmatch(component.split(".", 1)[0].rstrip(" ")), component
    assert len(component.encode("utf-8")) <= 120, component
    assert unicodedata.normalize("NFC", component) == component, component


def assert_paths_are_portable(paths: list[str]) -> None:
    """Every path is safe and no two files or folders clash on a case-insensitive disk."""
    seen: dict[str, str] = {}
    for path in paths:
        assert unsafe_path_reason(path) is None, path
        assert path.startswith("notes/"), path
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            assert_component_is_portable(parts[depth - 1])
            key = unicodedata.normalize("NFC", prefix.casefold())
            assert seen.setdefault(key, prefix) == prefix, f"{prefix!r} clashes with {seen[key]!r}"
    file_keys = {unicodedata.normalize("NFC", p.casefold()) for p in paths}
    assert len(file_keys) == len(paths)


def test_it_round_trips_alice_notes_exactly() -> None:
    notes_ = alice_notes()
    files, md_paths = export(notes_)
    assert [read_note(p, files[p], files.__getitem__) for p in md_paths] == list(notes_)


def test_it_keeps_both_notes_with_the_same_title() -> None:
    files, md_paths = export(alice_notes())
    assert md_paths[:2] == ["notes/Home/Shopping list.md", "notes/Home/Shopping list (2).md"]
    assert b"Same title, different note" in files[md_paths[1]]


def test_it_keeps_the_passwd_title_inside_notes() -> None:
    files, md_paths = export(alice_notes())
    path = md_paths[2]
    assert path.startswith("notes/Work/Projects/")
    assert ".." not in path.split("/")
    assert_paths_are_portable(list(files))


def test_it_keeps_a_body_that_looks_like_front_matter_byte_for_byte() -> None:
    note = alice_notes()[2]
    assert note.body.startswith("---\nnot: front matter\n---\n")
    files, md_paths = export([note])
    assert files[md_paths[0]].endswith(note.body.encode("utf-8"))
    assert read_note(md_paths[0], files[md_paths[0]], files.__getitem__).body == note.body


def test_it_restores_attachment_bytes_name_and_type_exactly() -> None:
    note = alice_notes()[2]
    files, md_paths = export([note])
    (attachment,) = read_note(md_paths[0], files[md_paths[0]], files.__getitem__).attachments
    assert attachment == note.attachments[0]
    assert attachment.data.startswith(b"\x89PNG")
    assert files[md_paths[0].removesuffix(".md") + ".assets/pixel.png"] == attachment.data


def test_it_keeps_two_attachments_with_the_same_name_apart() -> None:
    note = Note(
        id="n",
        title="Scans",
        body="",
        attachments=(
            Attachment("scan.pdf", "application/pdf", b"one"),
            Attachment("SCAN.pdf", "application/pdf", b"two"),
            Attachment("scan.pdf", "application/pdf", b"three"),
        ),
    )
    files, md_paths = export([note])
    assert sorted(files) == [
        "notes/Scans.assets/SCAN (2).pdf",
        "notes/Scans.assets/scan (3).pdf",
        "notes/Scans.assets/scan.pdf",
        "notes/Scans.md",
    ]
    assert read_note(md_paths[0], files[md_paths[0]], files.__getitem__) == note


def test_it_keeps_crlf_and_a_missing_final_newline_in_the_body() -> None:
    note = Note(id="n", title="t", body="---\r\nx: 1\r\n---\r\nend without newline")
    files, md_paths = export([note])
    assert read_note(md_paths[0], files[md_paths[0]], files.__getitem__) == note


def test_it_numbers_titles_that_differ_only_in_case_or_normalisation() -> None:
    titles = ["Shopping list", "shopping LIST", "Caf\u00e9", "Cafe\u0301", "Straße", "STRASSE"]
    _, md_paths = export([Note(id=str(i), title=t, body="") for i, t in enumerate(titles)])
    assert md_paths == [
        "notes/Shopping list.md",
        "notes/shopping LIST (2).md",
        "notes/Caf\u00e9.md",
        "notes/Caf\u00e9 (2).md",
        "notes/Straße.md",
        "notes/STRASSE (2).md",
    ]


def test_it_renames_windows_device_names_even_with_extensions() -> None:
    titles = ["CON", "nul", "com1.txt", "LPT9", "AUX .md", "COM\u00b2"]
    _, md_paths = export([Note(id=str(i), title=t, body="") for i, t in enumerate(titles)])
    assert md_paths == [
        "notes/CON_.md",
        "notes/nul_.md",
        "notes/com1_.txt.md",
        "notes/LPT9_.md",
        "notes/AUX_.md.md",
        "notes/COM\u00b2_.md",
    ]


def test_it_caps_long_titles_in_utf8_bytes_without_splitting_characters() -> None:
    _, md_paths = export([Note(id=str(i), title="日本語" * 100, body="") for i in range(3)])
    for path in md_paths:
        name = path.split("/")[-1]
        assert len(name.encode("utf-8")) <= 120
    assert md_paths[1].endswith(" (2).md")
    assert len({p.casefold() for p in md_paths}) == 3


def test_it_keeps_a_note_and_a_notebook_with_the_same_file_name_apart() -> None:
    notes_ = [
        Note(id="1", title="X", body="", attachments=(Attachment("a", "text/plain", b""),)),
        Note(id="2", title="y", body="", notebook="X.assets"),
        Note(id="3", title="y", body="", notebook="x.md"),
        Note(id="4", title="X", body=""),
    ]
    files, md_paths = export(notes_)
    assert md_paths == [
        "notes/X.md",
        "notes/X.assets (2)/y.md",
        "notes/x.md (2)/y.md",
        "notes/X (2).md",
    ]
    assert_paths_are_portable(list(files))


def test_it_numbers_thousands_of_same_titled_notes_without_slowing_down() -> None:
    _, md_paths = export([Note(id=str(i), title="", body="") for i in range(3000)])
    assert md_paths[0] == "notes/Untitled.md"
    assert md_paths[-1] == "notes/Untitled (3000).md"


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(notes(), max_size=5))
def test_it_reads_back_every_note_exactly(notes_: list[Note]) -> None:
    files, md_paths = export(notes_)
    assert [read_note(p, files[p], files.__getitem__) for p in md_paths] == notes_


@settings(max_examples=examples(80), deadline=None)
@given(st.lists(notes(), max_size=6))
def test_it_only_generates_portable_unique_paths(notes_: list[Note]) -> None:
    files, _ = export(notes_)
    assert_paths_are_portable(list(files))


@settings(max_examples=examples(200), deadline=None)
@given(names())
def test_it_sanitises_any_name_into_one_portable_component(name: str) -> None:
    component = sanitize_component(name)
    assert_component_is_portable(component)
    assert sanitize_component(component) == component


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_it_sanitises_each_known_troublemaker(name: str) -> None:
    assert_component_is_portable(sanitize_component(name))


@settings(max_examples=examples(60), deadline=None)
@given(notes())
def test_it_writes_front_matter_that_a_real_yaml_parser_reads_the_same(note: Note) -> None:
    yaml = pytest.importorskip("yaml")  # not a declared dependency: interop check only
    files, md_paths = export([note])
    text = files[md_paths[0]].decode("utf-8")
    data = yaml.safe_load(text[4 : text.index("\n---\n", 3)])
    assert data["title"] == note.title
    assert data["id"] == note.id
    assert data.get("notebook") == note.notebook
    assert tuple(data["tags"]) == note.tags
    assert [a["name"] for a in data.get("attachments", [])] == [a.filename for a in note.attachments]


def md(front: str, body: str = "") -> bytes:
    return f"---\n{front}---\n{body}".encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"# no front matter\n", "does not start with a '---'"),
        (b'---\ntitle: "x"\nid: "1"\n', "no closing '---'"),
        (md('title: "x"\n'), "no 'id'"),
        (md('title: x\nid: "1"\n'), "line 2: expected a quoted string"),
        (md('title: "\\q"\nid: "1"\n'), "bad escape"),
        (md('title: "x"\nid: "1"\npinned: "yes"\n'), "'pinned' must be true or false"),
        (md('title: "x"\nid: "1"\ncreated: "yesterday"\n'), "not an ISO 8601 time"),
        (b'---\ntitle: "\xff"\n---\n', "not UTF-8"),
    ],
)
def test_it_refuses_a_broken_note_file_naming_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(MarkdownError, match=re.escape(message)) as caught:
        read_note("notes/x.md", data, dict[str, bytes]().__getitem__)
    assert str(caught.value).startswith("notes/x.md: ")


@pytest.mark.parametrize("link", ["../secret.txt", "/etc/passwd", "a/%2e%2e/b", "a\\b", "a//b"])
def test_it_refuses_attachment_links_that_leave_the_note_folder(link: str) -> None:
    data = md(f'title: "x"\nid: "1"\nattachments:\n  - {{file: "{link}", name: "a", media_type: "b"}}\n')
    with pytest.raises(MarkdownError, match="unsafe"):
        read_note("notes/x.md", data, lambda path: b"")


def test_it_names_a_missing_attachment() -> None:
    item = '{file: "x.assets/a.png", name: "a", media_type: "b"}'
    data = md(f'title: "x"\nid: "1"\nattachments:\n  - {item}\n')
    with pytest.raises(MarkdownError, match=r"notes/x\.md: attachment 'x\.assets/a\.png' is missing"):
        read_note("notes/x.md", data, dict[str, bytes]().__getitem__)


def test_it_reads_times_as_aware_utc() -> None:
    note = Note(id="1", title="t", body="", created=dt.datetime(2009, 9, 30, 12, tzinfo=dt.UTC))
    files, md_paths = export([note])
    created = read_note(md_paths[0], files[md_paths[0]], files.__getitem__).created
    assert created is not None and created.utcoffset() == dt.timedelta(0)
    assert b'created: "2009-09-30T12:00:00Z"' in files[md_paths[0]]


def test_every_path_fits_windows_limits_however_deep_and_long_the_notebook_and_names() -> None:
    """Archive paths stay within 180 UTF-8 bytes (so within 180 UTF-16 units), leaving room for the
    folder Windows extracts into under its 260-character MAX_PATH; the exact names come back."""
    level = "Ünïcode notebook level with a rather long name 📁"
    deep = Note(
        id="deep",
        title="A very long note title " * 8,
        body="body\n",
        notebook="/".join(f"{level} {i}" for i in range(12)),
        attachments=(
            Attachment(
                filename="an attachment with an extremely long file name " * 4 + ".pdf",
                media_type="application/pdf",
                data=b"%PDF",
            ),
            Attachment(
                filename="an attachment with an extremely long file name " * 4 + ".pdf",
                media_type="application/pdf",
                data=b"%PDF-2",
            ),
        ),
    )
    plain = Note(id="plain", title="Z" * 300, body="", notebook=deep.notebook)
    short = Note(id="short", title="Groceries", body="", notebook="Home")
    files, md_paths = export([deep, plain, short])
    assert_paths_are_portable(list(files))
    for path in files:
        assert len(path.encode("utf-8")) <= 180, path
        assert len(path.encode("utf-16-le")) // 2 <= 180, path
    assert md_paths[2] == "notes/Home/Groceries.md"  # short names are untouched
    assert md_paths[0].count("/") >= 2  # still nested, as deep as fits
    back = [read_note(p, files[p], files.__getitem__) for p in md_paths]
    assert back == [deep, plain, short]
    assert back[0].attachments[0].data != back[0].attachments[1].data
