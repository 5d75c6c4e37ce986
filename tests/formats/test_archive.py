"""The archive: streamed, verified, placed atomically, and every kind of damage caught."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobs.export as archive_module
from account.records import Attachment, Note
from exporters.archive.manifest import ArchiveError
from exporters.archive.paths import PathAllocator
from exporters.archive.reader import iter_members, open_archive, open_member, verify_archive
from exporters.archive.writer import Entry
from exporters.markdown.reader import read_note
from exporters.markdown.writer import note_files
from store.archive_files import ArchiveFilesError
from tests.archives import local_path, write_archive
from tests.profiles import examples
from tests.strategies.notes import notes

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
META = {"user": "alice@example.com", "counts": {"contacts": 3, "events": 4, "notes": 3}}
RANDOM = random.Random(1).randbytes(50_000)  # incompressible, so deflate stores it verbatim
FILES = {
    "contacts/contacts.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nEND:VCARD\r\n",
    "calendars/Personal.ics": b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    "notes/Home/Caf\u00e9 \u65e5\u672c.md": '---\ntitle: "x"\n---\n\u00e9\n'.encode(),
    "notes/empty.md": b"",
    "data/random.bin": RANDOM,
}


def chunked(data: bytes, size: int = 7_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def entries(files: dict[str, bytes] = FILES) -> list[Entry]:
    return [Entry(path, chunked(data)) for path, data in files.items()]


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return local_path(write_archive(tmp_path, "archive.zip", entries(), META, NOW))


def rebuild(
    src: Path,
    *,
    drop: tuple[str, ...] = (),
    change: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
    relist: bool = False,
) -> Path:
    """Copy `src` with members dropped, changed or added; `relist` fixes the manifest to match."""
    change = dict(change or {})
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist() if i.filename not in drop}
    members.update(change)
    members.update(add or {})
    if relist:
        manifest = json.loads(members["manifest.json"])
        for item in manifest["files"]:
            if item["path"] in members:
                data = members[item["path"]]
                item["sha256"], item["size"] = hashlib.sha256(data).hexdigest(), len(data)
        members["manifest.json"] = json.dumps(manifest).encode()
    dst = src.with_name("tampered.zip")
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return dst


def edit_manifest(src: Path, edit: Callable[[dict], None]) -> Path:
    with zipfile.ZipFile(src) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    edit(manifest)
    return rebuild(src, change={"manifest.json": json.dumps(manifest).encode()})


def test_it_round_trips_every_entry_with_its_hash_and_size(tmp_path: Path) -> None:
    info = write_archive(tmp_path, "archive.zip", entries(), META, NOW)
    assert info.path == tmp_path / "archive.zip"
    data = info.path.read_bytes()
    assert (info.sha256, info.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert dict(iter_members(info.path)) == FILES
    listed = {f.path: (f.sha256, f.size) for f in verify_archive(info.path).files}
    for path, content in FILES.items():
        assert listed[path] == (hashlib.sha256(content).hexdigest(), len(content))
    assert set(listed) == {*FILES, "README.txt", "SHA256SUMS"}


def test_it_records_format_time_user_and_counts_in_the_manifest(written: Path) -> None:
    with zipfile.ZipFile(written) as zf:
        assert zf.namelist()[-1] == "manifest.json"
        raw = zf.read("manifest.json")
    document = json.loads(raw)
    assert document["format"] == "lifeboat-archive"
    assert document["format_version"] == 1
    assert document["created_at"] == "2026-11-25T04:00:00Z"
    assert document["user"] == "alice@example.com"
    assert document["counts"] == META["counts"]
    manifest = verify_archive(written)
    assert manifest.to_json() == raw
    assert manifest.email == "alice@example.com"
    assert manifest.created_at == NOW
    assert manifest.paths == list(FILES)


def test_it_adds_a_readme_that_explains_imports_and_checks(written: Path) -> None:
    readme = open_member(written, "README.txt").decode()
    needles = [
        *("alice@example.com", "3 contacts", "Google Contacts", "Apple Calendar", "Outlook"),
        *("Thunderbird", "Obsidian", "sha256sum -c SHA256SUMS", "lifeboat verify"),
    ]
    assert [n for n in needles if n not in readme] == []


def test_it_keeps_a_readme_the_caller_supplies(tmp_path: Path) -> None:
    own = {"README.txt": b"custom readme\n", **FILES}
    path = local_path(write_archive(tmp_path, "a.zip", entries(own), META, NOW))
    assert open_member(path, "README.txt") == b"custom readme\n"


def test_it_stores_the_layout_known_only_after_the_entries(tmp_path: Path) -> None:
    seen: list[str] = []

    def produce() -> Iterator[Entry]:
        for entry in entries():
            seen.append(entry.path)
            yield entry

    info = write_archive(tmp_path, "a.zip", produce(), META, NOW, layout=lambda: {"files": list(seen)})
    assert info.manifest.meta["layout"] == {"files": list(FILES)}


def test_it_writes_sha256sums_that_sha256sum_accepts(written: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with zipfile.ZipFile(written) as zf:
        zf.extractall(out)
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(FILES) + 1  # + README.txt


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip not installed")
def test_it_writes_a_zip_that_info_zip_accepts(written: Path) -> None:
    result = subprocess.run(["unzip", "-t", str(written)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_it_writes_the_same_bytes_for_the_same_input(tmp_path: Path) -> None:
    one = write_archive(tmp_path, "one.zip", entries(), META, NOW)
    two = write_archive(tmp_path, "two.zip", entries(), META, NOW)
    assert one.sha256 == two.sha256


def test_it_never_overwrites_an_existing_archive(written: Path) -> None:
    before = written.read_bytes()
    with pytest.raises(ArchiveFilesError, match="already exists"):
        write_archive(written.parent, written.name, entries({"x.txt": b"new"}), META, NOW)
    assert written.read_bytes() == before
    assert os.listdir(written.parent) == [written.name]


def test_it_leaves_nothing_when_an_entry_fails_mid_stream(tmp_path: Path) -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        write_archive(tmp_path, "a.zip", [*entries(), Entry("late.bin", failing())], META, NOW)
    assert os.listdir(tmp_path) == []


def test_it_leaves_nothing_when_verification_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, **_: object) -> None:
        assert path.name.startswith(".a.zip.partial-") and path.exists()
        raise ArchiveError("simulated bad read-back")

    monkeypatch.setattr(archive_module, "verify_archive", refuse)
    with pytest.raises(ArchiveError, match="simulated"):
        write_archive(tmp_path, "a.zip", entries(), META, NOW)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../escape.txt": b""}, "'..' segment"),
        ({"/etc/passwd": b""}, "absolute"),
        ({"notes\\x.md": b""}, "backslash"),
        ({"notes/CON.md": b""}, "not a name every system accepts"),
        ({"notes/a:b.md": b""}, "not a name every system accepts"),
        ({"notes/A.md": b"", "notes/a.md": b""}, "clashes"),
        ({"notes/a": b"", "notes/a/b.md": b""}, "clashes"),
        ({"notes/a/b.md": b"", "notes/A": b""}, "clashes"),
        ({"manifest.json": b"{}"}, "reserves"),
        ({"sha256sums": b""}, "reserves"),
    ],
)
def test_it_refuses_unsafe_or_clashing_entry_paths(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        write_archive(tmp_path, "a.zip", entries(files), META, NOW)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["../a.zip", "sub/a.zip", ".hidden.zip", "a:b.zip", "CON.zip", ""])
def test_it_refuses_an_archive_name_that_is_not_a_plain_file_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="not a plain, portable file name"):
        write_archive(tmp_path, name, entries(), META, NOW)


def test_it_refuses_a_naive_time_and_meta_it_cannot_store(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="timezone-aware"):
        write_archive(tmp_path, "a.zip", entries(), META, NOW.replace(tzinfo=None))
    with pytest.raises(ArchiveError, match="cannot be stored"):
        write_archive(tmp_path, "a.zip", entries(), {**META, "when": NOW}, NOW)
    with pytest.raises(ArchiveError, match="may not set files"):
        write_archive(tmp_path, "a.zip", entries(), {**META, "files": []}, NOW)
    assert os.listdir(tmp_path) == []


def test_it_detects_one_flipped_byte_inside_a_member(written: Path) -> None:
    with zipfile.ZipFile(written) as zf:
        info = zf.getinfo("data/random.bin")
    raw = bytearray(written.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0x01
    written.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r"^data/random\.bin: damaged in the zip \(Bad CRC-32"):
        verify_archive(written)


def test_it_detects_a_member_changed_and_rezipped_with_a_valid_crc(written: Path) -> None:
    tampered = rebuild(written, change={"notes/empty.md": b"sneaked in"})
    with pytest.raises(ArchiveError, match=r"^notes/empty\.md: size is 10 bytes in the zip, 0 in"):
        verify_archive(tampered)
    same_size = rebuild(written, change={"contacts/contacts.vcf": FILES["contacts/contacts.vcf"].upper()})
    with pytest.raises(ArchiveError, match=r"^contacts/contacts\.vcf: SHA-256 does not match"):
        verify_archive(same_size)


def test_it_detects_a_truncated_archive(written: Path) -> None:
    data = written.read_bytes()
    written.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="is not a readable ZIP archive; is it truncated"):
        verify_archive(written)


def test_it_detects_an_added_member(written: Path) -> None:
    with zipfile.ZipFile(written, "a") as zf:
        zf.writestr("notes/extra.md", b"added later")
    with pytest.raises(ArchiveError, match=r"^notes/extra\.md: in the zip but not listed"):
        verify_archive(written)


def test_it_detects_a_deleted_manifest(written: Path) -> None:
    with pytest.raises(ArchiveError, match=r"^manifest\.json is missing"):
        verify_archive(rebuild(written, drop=("manifest.json",)))


def test_it_detects_a_deleted_member(written: Path) -> None:
    with pytest.raises(ArchiveError, match=r"^calendars/Personal\.ics: listed in manifest\.json but missing"):
        verify_archive(rebuild(written, drop=("calendars/Personal.ics",)))


@pytest.mark.parametrize("name", ["../evil.sh", "/etc/cron.d/evil", "notes\\..\\..\\evil", "C:/evil"])
def test_it_refuses_members_that_would_escape_the_folder(written: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="is unsafe to extract"):
        verify_archive(rebuild(written, add={name: b"x"}))


def test_it_refuses_an_unknown_format_version(written: Path) -> None:
    tampered = edit_manifest(written, lambda m: m.update(format_version=2))
    with pytest.raises(ArchiveError, match="format_version 2 is not one this Lifeboat understands"):
        verify_archive(tampered)


def test_it_refuses_a_manifest_that_is_not_json(written: Path) -> None:
    with pytest.raises(ArchiveError, match=r"manifest\.json is not valid JSON"):
        verify_archive(rebuild(written, change={"manifest.json": b"{not json"}))


def test_it_refuses_sha256sums_that_disagree_with_the_manifest(written: Path) -> None:
    tampered = rebuild(written, change={"SHA256SUMS": b"0" * 64 + b"  x\n"}, relist=True)
    with pytest.raises(ArchiveError, match=r"SHA256SUMS: does not agree with manifest\.json"):
        verify_archive(tampered)


def test_it_refuses_a_manifest_listing_an_unsafe_path(written: Path) -> None:
    def escape(manifest: dict) -> None:
        manifest["files"][0]["path"] = "../outside"

    with pytest.raises(ArchiveError, match=r"'\.\./outside' has an unsafe path"):
        verify_archive(edit_manifest(written, escape))


def test_it_says_when_the_archive_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        verify_archive(tmp_path / "missing.zip")


def test_it_reads_members_back_for_a_restore(tmp_path: Path) -> None:
    notes = [
        Note(id="1", title="Same", body="---\nfake: yes\n---\n", notebook="Home"),
        Note(id="2", title="same", body="x", notebook="Home",
             attachments=(Attachment("a.png", "image/png", RANDOM[:100]),)),
    ]  # fmt: skip
    paths = PathAllocator()
    files = [file for note in notes for file in note_files(note, paths)]
    info = write_archive(tmp_path, "a.zip", [Entry(p, [d]) for p, d in files], META, NOW)
    with open_archive(local_path(info)) as archive:
        md_paths = [p for p in archive.paths() if p.endswith(".md")]
        assert [read_note(p, archive.open_member(p), archive.open_member) for p in md_paths] == notes
        with pytest.raises(KeyError):
            archive.open_member("notes/not-there.md")


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(notes(), max_size=4))
def test_it_archives_and_restores_any_notes(notes_: list[Note]) -> None:
    paths = PathAllocator()
    written = [note_files(note, paths) for note in notes_]
    entries_ = [Entry(path, [data]) for files in written for path, data in files]
    with tempfile.TemporaryDirectory() as folder:
        info = write_archive(Path(folder), "a.zip", entries_, META, NOW)
        with open_archive(local_path(info)) as archive:
            md_paths = [files[0][0] for files in written]
            restored = [read_note(p, archive.open_member(p), archive.open_member) for p in md_paths]
    assert restored == notes_


def test_it_keeps_memory_flat_for_a_200_mb_archive(tmp_path: Path) -> None:
    block = random.Random(2).randbytes(16 * 1024)  # repeats within deflate's window: fast to pack

    def big(n: int) -> Iterator[bytes]:
        for i in range(n):
            yield block[i % 64 :] + block[: i % 64]

    tracemalloc.start()
    try:
        info = write_archive(tmp_path, "big.zip", (Entry(f"data/{i}.bin", big(3200)) for i in range(4)), META, NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(f.size for f in info.manifest.files if f.path.startswith("data/")) == 4 * 3200 * 16 * 1024
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
