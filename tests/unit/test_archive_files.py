"""The archive store seam on a local folder: placement is atomic, verified and never overwrites."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from store.archive_files import ArchiveFilesError, LocalArchiveFiles, local_copy, store_new


def _source(folder: Path, data: bytes) -> tuple[Path, str, int]:
    path = folder / "source.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def test_it_puts_reads_and_deletes_a_file(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path / "store")
    source, sha256, size = _source(tmp_path, b"zip bytes")
    files.put("7/a.zip", source, sha256=sha256, size=size)
    assert files.exists("7/a.zip") and files.local_path("7/a.zip") == tmp_path / "store" / "7" / "a.zip"
    with files.open("7/a.zip") as f:
        assert f.read() == b"zip bytes"
    assert files.download_url("7/a.zip", filename="a.zip", expires_in=60) is None
    files.delete("7/a.zip")
    files.delete("7/a.zip")  # missing is fine
    assert not files.exists("7/a.zip")


def test_it_never_overwrites_a_stored_file(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path / "store")
    source, sha256, size = _source(tmp_path, b"first")
    files.put("a.zip", source, sha256=sha256, size=size)
    other, sha256, size = _source(tmp_path / "store", b"second")
    with pytest.raises(ArchiveFilesError, match="never overwritten"):
        files.put("a.zip", other, sha256=sha256, size=size)
    assert (tmp_path / "store" / "a.zip").read_bytes() == b"first"


def test_it_refuses_a_file_whose_stored_bytes_differ_from_the_claim(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path / "store")
    source, _, size = _source(tmp_path, b"bytes")
    with pytest.raises(ArchiveFilesError, match="differ"):
        files.put("a.zip", source, sha256="0" * 64, size=size)
    assert not files.exists("a.zip")


@pytest.mark.parametrize("relpath", ["../a.zip", "/a.zip", "a//b.zip", "a\\b.zip", ""])
def test_it_refuses_paths_that_leave_the_store(tmp_path: Path, relpath: str) -> None:
    with pytest.raises(ArchiveFilesError):
        LocalArchiveFiles(tmp_path).exists(relpath)


def test_a_new_file_appears_only_after_it_was_written_and_verified(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path)
    seen: list[Path] = []

    def verify(temp: Path) -> str:
        seen.append(temp)
        assert temp.name.startswith(".a.zip.partial-") and temp.parent == tmp_path / "1"
        assert not files.exists("1/a.zip")
        return temp.read_bytes().decode()

    stored = store_new(files, "1/a.zip", lambda out: out.write(b"payload"), verify)
    assert stored.verified == "payload" and stored.size == 7
    assert stored.sha256 == hashlib.sha256(b"payload").hexdigest()
    assert os.listdir(tmp_path / "1") == ["a.zip"]


def test_a_failed_verification_leaves_nothing(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path)

    def refuse(temp: Path) -> None:
        raise ValueError("bad read-back")

    with pytest.raises(ValueError, match="bad read-back"):
        store_new(files, "1/a.zip", lambda out: out.write(b"payload"), refuse)
    assert os.listdir(tmp_path / "1") == []


def test_it_lists_files_older_than_a_cutoff_for_clean_up(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "a.zip").write_bytes(b"a")
    (tmp_path / ".spool-x.sqlite").write_bytes(b"s")
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
    os.utime(tmp_path / "1" / "a.zip", (past, past))
    os.utime(tmp_path / ".spool-x.sqlite", (past, past))
    (tmp_path / "1" / "new.zip").write_bytes(b"n")
    cutoff = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    assert sorted(files.stored_before(cutoff)) == [".spool-x.sqlite", "1/a.zip"]


def test_a_local_copy_of_a_folder_store_is_the_stored_file(tmp_path: Path) -> None:
    files = LocalArchiveFiles(tmp_path)
    stored = store_new(files, "1/a.zip", lambda out: out.write(b"x"), lambda _temp: None)
    with local_copy(files, stored.relpath) as path:
        assert path == tmp_path / "1" / "a.zip"
    with pytest.raises(ArchiveFilesError), local_copy(files, "1/missing.zip"):
        pass
