"""An archive the user unpacked and zipped again still verifies and restores; unsafe zips are still refused.

Why: the archive is the user's own copy, and people unzip it, look inside and
zip it again with whatever their system offers. The tools below are the real
Debian `zip`/`unzip` (Info-ZIP 3.0, the same code as macOS' and most Linux
`zip`); what they cannot make (Windows' compressed folders, macOS Finder and
`ditto`, old Info-ZIP's Unicode Path field, PowerShell 5's backslashes) is
built byte by byte with `tests.formats.zipbuild`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from account.records import Account
from errors import InvalidInput
from exporters.archive.check import check_archive
from exporters.archive.counts import account_counts
from exporters.archive.layout import Bundle
from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import open_archive, read_account, verify_archive
from exporters.archive.zipdir import central_directory
from tests.archives import MemorySource, local_path, write_archive
from tests.conftest import NOW
from tests.formats.zipbuild import FAT, UTF8_FLAG, Raw, build_zip, unicode_path_extra

TOP = "lifeboat-alice"


@pytest.fixture
def original(alice: Account, tmp_path: Path) -> Path:
    """Alice's archive as `jobs.export` writes it (same meta, same layout)."""
    bundle = Bundle(MemorySource(alice), now=NOW, timezone=alice.timezone)
    meta = {
        "user": alice.email,
        "display_name": alice.display_name,
        "timezone": alice.timezone,
        "counts": account_counts(alice),
        "vcard_version": "3.0",
    }
    info = write_archive(tmp_path, "original.zip", bundle.entries(), meta, NOW, layout=lambda: bundle.layout.as_dict())
    assert any(not n.isascii() for n in info.manifest.paths), "the sample must have non-ASCII names"
    return local_path(info)


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def assert_verifies_and_restores_like(repacked: Path, original: Path) -> str:
    """Both readers accept `repacked` and read exactly what `original` holds; return verify's summary."""
    assert verify_archive(repacked).files == verify_archive(original).files
    report = check_archive(repacked)
    assert report.counts() == check_archive(original).counts()
    assert read_account(repacked) == read_account(original)
    return report.summary()


# ---------------------------------------------------------------- the real tools


@pytest.fixture
def unpacked(original: Path, tmp_path: Path) -> Path:
    """The archive unpacked by Debian's `unzip` into `<tmp>/lifeboat-alice/`."""
    if shutil.which("zip") is None or shutil.which("unzip") is None:
        if os.environ.get("CI"):
            pytest.fail("zip and unzip must be installed in CI (apt-get install -y zip unzip)")
        pytest.skip("Debian's zip and unzip are not installed here (apt-get install -y zip unzip)")
    folder = tmp_path / TOP
    subprocess.run(["unzip", "-q", str(original), "-d", str(folder)], check=True)
    return folder


@pytest.mark.parametrize(
    ("options", "from_outside"),
    [
        (["-r"], False),  # folder entries (`notes/`): once refused as unsafe
        (["-r", "-D"], False),  # no folder entries; UTF-8 names without the flag: once "not listed"
        (["-r", "-9"], False),
        (["-r", "-0"], False),  # stored, not deflated
        (["-r"], True),  # zipped from outside: everything under lifeboat-alice/
        (["-r", "-D"], True),
    ],
    ids=["zip-r", "zip-rD", "zip-r9", "zip-r0-stored", "zip-r-outside", "zip-rD-outside"],
)
def test_it_accepts_an_archive_unzipped_and_zipped_again_with_info_zip(
    unpacked: Path, original: Path, tmp_path: Path, options: list[str], from_outside: bool
) -> None:
    repacked = tmp_path / "repacked.zip"
    if from_outside:
        subprocess.run(["zip", "-q", *options, str(repacked), TOP], cwd=unpacked.parent, check=True)
    else:
        subprocess.run(["zip", "-q", *options, str(repacked), "."], cwd=unpacked, check=True)
    summary = assert_verifies_and_restores_like(repacked, original)
    assert ("read inside the top folder 'lifeboat-alice'" in summary) == from_outside
    assert ("folder entries" in summary) == ("-D" not in options)


def test_it_accepts_members_in_another_order(unpacked: Path, original: Path, tmp_path: Path) -> None:
    names = sorted((p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()), reverse=True)
    assert names[0] != "contacts/cards" and "manifest.json" in names
    repacked = tmp_path / "reversed.zip"
    subprocess.run(["zip", "-q", str(repacked), *names], cwd=unpacked, check=True)
    with repacked.open("rb") as f:
        assert [m.name for m in central_directory(f)] == names
    assert_verifies_and_restores_like(repacked, original)


def test_it_still_refuses_a_file_added_after_unpacking(unpacked: Path, tmp_path: Path) -> None:
    (unpacked / "notes" / "added later.md").write_text("---\nid: x\n---\n")
    repacked = tmp_path / "repacked.zip"
    subprocess.run(["zip", "-qr", str(repacked), "."], cwd=unpacked, check=True)
    with pytest.raises(ArchiveError, match=r"^notes/added later\.md: in the zip but not listed"):
        verify_archive(repacked)


# ---------------------------------------------------------------- other tools, byte by byte


def _folders(paths: Iterable[str]) -> list[str]:
    found: list[str] = []
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i]) + "/"
            if folder not in found:
                found.append(folder)
    return found


def test_it_accepts_a_windows_compressed_folder(original: Path, tmp_path: Path) -> None:
    """Explorer's "Send to > Compressed (zipped) folder" on the unpacked folder.

    It adds the folder itself and an entry per subfolder, FAT attributes, and
    names in the OEM code page (CP437 here) without the UTF-8 flag; a name the
    code page cannot hold is written in UTF-8 with the flag.
    """
    members = _members(original)
    raws = []
    for name in [f"{TOP}/", *(f"{TOP}/{f}" for f in _folders(n for n, _ in members))]:
        raws.append(Raw(name.encode("cp437"), system=FAT))
    for name, data in members:
        full = f"{TOP}/{name}"
        try:
            raws.append(Raw(full.encode("cp437"), data, system=FAT))
        except UnicodeEncodeError:
            raws.append(Raw(full.encode("utf-8"), data, flags=UTF8_FLAG, system=FAT))
    assert any(b"\x81" in r.name for r in raws), "Müller must be stored as CP437"
    assert_verifies_and_restores_like(build_zip(tmp_path / "windows.zip", raws), original)


def test_it_accepts_a_macos_finder_zip_and_says_what_it_ignored(original: Path, tmp_path: Path) -> None:
    """Finder's "Compress" / `ditto -c -k --sequesterRsrc --keepParent`: NFD names, `__MACOSX/`, `._` files."""
    raws = [Raw(f"{TOP}/".encode(), mode=0o40755)]
    for name, data in _members(original):
        decomposed = unicodedata.normalize("NFD", f"{TOP}/{name}")
        raws.append(Raw(decomposed.encode("utf-8"), data, flags=UTF8_FLAG))
        raws.append(Raw(f"__MACOSX/{TOP}/._{name.rsplit('/', 1)[-1]}".encode(), b"\x00\x05\x16\x07", flags=UTF8_FLAG))
    raws.append(Raw(f"{TOP}/.DS_Store".encode(), b"\x00\x00\x00\x01Bud1"))
    assert any(unicodedata.normalize("NFC", r.name.decode()) != r.name.decode() for r in raws)
    summary = assert_verifies_and_restores_like(build_zip(tmp_path / "finder.zip", raws), original)
    assert "ignored: 1 folder entry; 14 file(s) macOS adds when zipping (__MACOSX/" in summary
    assert "and 9 more" in summary


def test_it_reads_the_unicode_path_field_old_info_zip_writes(original: Path, tmp_path: Path) -> None:
    """Info-ZIP 3.0 in a non-UTF-8 locale: a CP437 name (`?` for what it cannot hold) plus field 0x7075."""
    raws = []
    for name, data in _members(original):
        stored = name.encode("cp437", errors="replace")
        extra = unicode_path_extra(stored, name) if not name.isascii() else b""
        raws.append(Raw(stored, data, extra=extra))
    assert_verifies_and_restores_like(build_zip(tmp_path / "unicode-path.zip", raws), original)


def test_it_ignores_a_unicode_path_field_left_over_from_another_name(original: Path, tmp_path: Path) -> None:
    """The field names the CRC of the name it was written for: after a rename it no longer applies."""
    raws = [Raw(n.encode(), d, flags=UTF8_FLAG) for n, d in _members(original)]
    stale = unicode_path_extra(b"something else", "contacts/cards/evil.vcf")
    # Müller in CP437 without the flag, with a Unicode Path field written for another name.
    raws = [
        Raw(r.name.replace(b"\xc3\xbc", b"\x81"), r.data, extra=stale) if b"\xc3\xbc" in r.name else r for r in raws
    ]
    assert_verifies_and_restores_like(build_zip(tmp_path / "stale.zip", raws), original)


def test_it_accepts_backslashes_between_folders(original: Path, tmp_path: Path) -> None:
    """Windows PowerShell 5's `Compress-Archive` writes `notes\\Home\\Shopping list.md`."""
    raws = [Raw(n.replace("/", "\\").encode(), d, flags=UTF8_FLAG) for n, d in _members(original)]
    assert_verifies_and_restores_like(build_zip(tmp_path / "powershell.zip", raws), original)


@pytest.mark.parametrize(
    ("hostile", "message"),
    [
        (Raw(b"../evil.txt", b"x"), r"'\.\./evil\.txt' is unsafe"),
        (Raw(b"/etc/evil", b"x"), "absolute"),
        (Raw(b"C:/evil.txt", b"x"), "absolute"),
        (Raw(b"C:\\evil.txt", b"x"), "absolute"),
        (Raw(b"notes\\..\\..\\evil.txt", b"x"), "unsafe"),
        (Raw(b"__MACOSX/../../evil", b"x"), "unsafe"),  # ignored kinds are still checked
        (Raw(b"notes/../", b""), "unsafe"),  # so are folder entries
        (Raw(b"notes/link", b"/etc/passwd", mode=0o120777), "symbolic link"),
        (Raw(b"notes/", b"data"), "folder entry that holds data"),
        (Raw(b"README.txt", b"second copy"), "appears twice"),
        (Raw("notes/Home/Shopping list.md".replace("/", "\\").encode(), b"x"), "appears twice"),
    ],
    ids=["dotdot", "absolute", "drive", "drive-backslash", "backslash-escape", "macosx-escape", "folder-escape",
         "symlink", "folder-with-data", "duplicate", "duplicate-by-separator"],
)  # fmt: skip
def test_it_still_refuses_unsafe_members_in_a_repacked_zip(
    original: Path, tmp_path: Path, hostile: Raw, message: str
) -> None:
    raws = [Raw(f"{n}".encode(), d, flags=UTF8_FLAG) for n, d in _members(original)]
    bad = build_zip(tmp_path / "hostile.zip", [*raws, hostile])
    with pytest.raises(ArchiveError, match=message):
        verify_archive(bad)
    with pytest.raises(InvalidInput, match=message):
        check_archive(bad)
    with pytest.raises(ArchiveError, match=message):
        read_account(bad)


def test_it_refuses_two_names_that_differ_only_in_unicode_normalisation(original: Path, tmp_path: Path) -> None:
    raws = [Raw(n.encode(), d, flags=UTF8_FLAG) for n, d in _members(original)]
    name = next(n for n, _ in _members(original) if "ü" in n)
    raws.append(Raw(unicodedata.normalize("NFD", name).encode(), b"x", flags=UTF8_FLAG))
    with pytest.raises(ArchiveError, match="appears twice"):
        verify_archive(build_zip(tmp_path / "twice.zip", raws))


def test_it_drops_a_top_folder_only_when_everything_is_inside_it(original: Path, tmp_path: Path) -> None:
    raws = [Raw(f"{TOP}/{n}".encode(), d, flags=UTF8_FLAG) for n, d in _members(original)]
    raws.append(Raw(b"stray.txt", b"outside the folder"))
    with pytest.raises(ArchiveError, match=r"manifest\.json is missing"):
        verify_archive(build_zip(tmp_path / "stray.zip", raws))


def test_the_reader_names_members_by_archive_path(original: Path, tmp_path: Path) -> None:
    raws = [Raw(f"{TOP}\\{n}".replace("/", "\\").encode("cp437", "replace"), d) for n, d in _members(original)]
    raws = [
        Raw(r.name, r.data, extra=unicode_path_extra(r.name, f"{TOP}/{n}")) if not n.isascii() else r
        for r, (n, _) in zip(raws, _members(original), strict=True)
    ]
    with open_archive(build_zip(tmp_path / "mixed.zip", raws)) as archive:
        assert archive.survey.prefix() == f"{TOP}/"
        listed = [n for n, _ in _members(original) if n != "manifest.json"]
        assert list(archive.paths_in_zip_order()) == listed
        for name, data in _members(original):
            if name != "manifest.json":
                assert archive.open_member(name) == data
