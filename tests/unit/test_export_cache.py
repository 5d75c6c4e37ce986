"""The per-user item cache file (`jobs.export_cache`): what a run keeps and what it prunes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobs.export_cache import FILENAME, ItemCacheFile


def _keys(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "7" / FILENAME) as db:
        return {key for (key,) in db.execute("SELECT key FROM items")}


def test_a_first_run_into_an_empty_file_keeps_every_entry_it_wrote(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        for i in range(1200):  # past one write batch
            cache.put(f"k{i}", b"v%d" % i, group="run" if i % 2 else "")
        cache.commit()
    assert _keys(tmp_path) == {f"k{i}" for i in range(1200)}


def test_a_later_run_keeps_what_it_read_or_wrote_and_drops_the_rest(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        for key in ("a", "b", "c", "run"):
            cache.put(key, key.encode())
        cache.put("grouped", b"g", group="run")
        cache.commit()
    with ItemCacheFile(tmp_path, 7) as cache:
        assert cache.get_many(["a", "run"]) == {"a": b"a", "run": b"run"}
        cache.put("d", b"d")
        cache.commit()
    assert _keys(tmp_path) == {"a", "run", "grouped", "d"}  # "grouped": its run was read


def test_a_run_that_fails_before_commit_prunes_nothing(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        cache.put("a", b"a")
        cache.commit()
    with ItemCacheFile(tmp_path, 7) as cache:
        cache.put("b", b"b")  # no commit: the archive did not verify
    assert _keys(tmp_path) == {"a", "b"}
