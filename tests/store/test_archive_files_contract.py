"""One contract, every archive store: what jobs and web may rely on, whichever backend holds the archives.

Each backend's class below only supplies the `files` fixture (and
`isolated_files` where the server would skew a memory measurement), the way
vdirsyncer runs one storage suite against every backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store.archive_bucket import ArchiveFilesError
from tests.servers.s3 import MotoS3
from tests.store.archive_servers import bucket_files

MiB = 1 << 20
LARGE = 20 * MiB
MEMORY_BOUND = 6 * MiB  # well under the archive's size: nothing holds it whole


def stage(files: Any, data: bytes, name: str = "staged.zip") -> tuple[Path, str, int]:
    """Write `data` into the store's scratch folder as an exporter would; (path, sha256, size)."""
    path = files.scratch() / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def stage_large(files: Any, size: int) -> tuple[Path, str]:
    """A file of `size` random bytes written in 1 MiB blocks, and its SHA-256."""
    path = files.scratch() / "large.zip"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    return path, digest.hexdigest()


def read_all(files: Any, relpath: str) -> bytes:
    with files.open(relpath) as handle:
        return bytes(handle.read())


class ArchiveFilesContract:
    """Behaviour every `ArchiveFiles` backend must show."""

    @pytest.fixture
    def files(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def isolated_files(self, files: Any) -> Any:
        """A store whose server, if any, runs outside this process (for memory measurements)."""
        return files

    def test_put_then_open_gives_the_same_bytes(self, files: Any) -> None:
        data = b"PK\x03\x04" + os.urandom(3000)
        path, sha, size = stage(files, data)
        files.put("7/a1.zip", path, sha256=sha, size=size)
        assert files.exists("7/a1.zip")
        assert read_all(files, "7/a1.zip") == data

    def test_put_refuses_to_overwrite_and_keeps_the_first(self, files: Any) -> None:
        first, sha, size = stage(files, b"first archive", "one.zip")
        files.put("7/a2.zip", first, sha256=sha, size=size)
        second, sha2, size2 = stage(files, b"second archive!", "two.zip")
        with pytest.raises(ArchiveFilesError):
            files.put("7/a2.zip", second, sha256=sha2, size=size2)
        assert read_all(files, "7/a2.zip") == b"first archive"

    def test_put_with_a_wrong_sha256_raises_and_stores_nothing(self, files: Any) -> None:
        path, _, size = stage(files, b"the archive")
        with pytest.raises(ArchiveFilesError):
            files.put("7/a3.zip", path, sha256=hashlib.sha256(b"another").hexdigest(), size=size)
        assert not files.exists("7/a3.zip")

    def test_put_with_a_wrong_size_raises_and_stores_nothing(self, files: Any) -> None:
        path, sha, size = stage(files, b"the archive")
        with pytest.raises(ArchiveFilesError):
            files.put("7/a4.zip", path, sha256=sha, size=size + 1)
        assert not files.exists("7/a4.zip")

    def test_delete_then_exists_is_false_and_deleting_again_is_fine(self, files: Any) -> None:
        path, sha, size = stage(files, b"short-lived")
        files.put("7/a5.zip", path, sha256=sha, size=size)
        files.delete("7/a5.zip")
        assert not files.exists("7/a5.zip")
        files.delete("7/a5.zip")

    def test_stored_before_lists_what_was_written_before_the_cutoff_only(self, files: Any) -> None:
        path, sha, size = stage(files, b"listed")
        files.put("7/a6.zip", path, sha256=sha, size=size)
        now = dt.datetime.now(dt.UTC)
        assert "7/a6.zip" in set(files.stored_before(now + dt.timedelta(minutes=5)))
        assert "7/a6.zip" not in set(files.stored_before(now - dt.timedelta(hours=1)))

    def test_open_of_a_missing_archive_raises_file_not_found_naming_it(self, files: Any) -> None:
        with pytest.raises(FileNotFoundError) as caught:
            files.open("7/never-written.zip")
        assert "7/never-written.zip" in str(caught.value)

    def test_scratch_is_a_writable_local_folder(self, files: Any) -> None:
        scratch = files.scratch()
        assert scratch.is_dir()
        (scratch / "probe").write_bytes(b"x")

    def test_a_large_archive_round_trips_in_constant_memory(self, isolated_files: Any) -> None:
        files = isolated_files
        path, sha = stage_large(files, LARGE)
        warm, warm_sha, warm_size = stage(files, b"warm-up", "warm.zip")
        files.put("8/warm.zip", warm, sha256=warm_sha, size=warm_size)  # load client models before measuring
        read_all(files, "8/warm.zip")
        tracemalloc.start()
        try:
            files.put("8/large.zip", path, sha256=sha, size=LARGE)
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            digest, total = hashlib.sha256(), 0
            with files.open("8/large.zip") as handle:
                while block := handle.read(MiB):
                    digest.update(block)
                    total += len(block)
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (total, digest.hexdigest()) == (LARGE, sha)
        assert put_peak < MEMORY_BOUND, f"put peaked at {put_peak / MiB:.1f} MiB"
        assert read_peak < MEMORY_BOUND, f"open/read peaked at {read_peak / MiB:.1f} MiB"

    def test_download_url_serves_the_file_as_an_attachment_or_is_none_for_a_local_file(self, files: Any) -> None:
        data = os.urandom(5000)
        path, sha, size = stage(files, data)
        files.put("7/a6.zip", path, sha256=sha, size=size)
        url = files.download_url("7/a6.zip", filename="lifeboat-alice-20261125T040000Z.zip", expires_in=60)
        if url is None:  # serve it yourself: then it must be a real file
            local = files.local_path("7/a6.zip")
            assert local is not None and local.read_bytes() == data
            return
        assert files.local_path("7/a6.zip") is None
        assert url.startswith("http://127.0.0.1:")  # test stores live on loopback only
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = answer.read()
            disposition = answer.headers["Content-Disposition"]
        assert body == data
        assert disposition.startswith("attachment;")
        assert 'filename="lifeboat-alice-20261125T040000Z.zip"' in disposition


class TestLocalArchiveFiles(ArchiveFilesContract):
    @pytest.fixture
    def files(self, tmp_path: Path) -> Any:
        module = pytest.importorskip("store.archive_files", reason="needs a1's store/archive_files.py")
        return module.LocalArchiveFiles(tmp_path / "archives")

    def test_it_hands_out_no_url(self, files: Any) -> None:
        path, sha, size = stage(files, b"local")
        files.put("1/x.zip", path, sha256=sha, size=size)
        assert files.download_url("1/x.zip", filename="x.zip", expires_in=60) is None


@pytest.mark.server
class TestBucketArchiveFiles(ArchiveFilesContract):
    @pytest.fixture
    def files(self, moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> Iterator[Any]:
        store = bucket_files(moto_server.url, s3_bucket, tmp_path / "scratch", prefix="archives/")
        yield store
        store.close()

    @pytest.fixture
    def isolated_files(self, moto_process: str, process_bucket: str, tmp_path: Path) -> Iterator[Any]:
        store = bucket_files(moto_process, process_bucket, tmp_path / "scratch-isolated")
        yield store
        store.close()
