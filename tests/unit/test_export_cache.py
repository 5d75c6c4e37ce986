"""The per-user item cache file (`jobs.export_cache`): what a run keeps and what it prunes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobs.export_cache import FILENAME, PRUNE_SLACK, WRITE_BATCH, ItemCacheFile


def _keys(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "7" / FILENAME) as db:
        return {key for (key,) in db.execute("SELECT key FROM items")}


def test_a_first_run_into_an_empty_file_keeps_every_entry_it_wrote(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        for i in range(1200):  # past one write batch
            cache.put(f"k{i}", b"v%d" % i, group="run" if i % 2 else "")
        cache.commit()
    assert _keys(tmp_path) == {f"k{i}" for i in range(1200)}


def _value(key: str) -> bytes:
    """An entry's value: all the same size, so that the file's bytes count its entries."""
    return key.encode().ljust(100, b".")


def _grow(folder: Path, *keys: str) -> None:
    """A run that uses nothing old and adds `keys` (it prunes nothing unless the file is due for it)."""
    with ItemCacheFile(folder, 7) as cache:
        for key in keys:
            cache.put(key, _value(key))
        cache.commit()


def test_a_pruning_run_keeps_what_it_read_or_wrote_and_drops_the_rest(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        for key in ("a", "b", "c", "run"):
            cache.put(key, key.encode())
        cache.put("grouped", b"g", group="run")
        cache.commit()
    _grow(tmp_path, "x", "y")  # 200 bytes more than the 7 the first run kept: due for a prune
    with ItemCacheFile(tmp_path, 7) as cache:
        assert cache.prunes
        assert cache.get_many(["a", "run"]) == {"a": b"a", "run": b"run"}
        cache.put("d", b"d")
        cache.commit()
    assert _keys(tmp_path) == {"a", "run", "grouped", "d"}  # "grouped": its run was read


def test_a_run_prunes_only_once_the_files_bytes_grew_by_a_quarter_since_the_last_prune(tmp_path: Path) -> None:
    _grow(tmp_path, *(f"k{i}" for i in range(100)))
    for i in range(24):  # 124 entries' bytes: under 125, so every one of these runs keeps everything
        with ItemCacheFile(tmp_path, 7) as cache:
            assert not cache.prunes
            assert cache.get_many(["k0"]) == {"k0": _value("k0")}
            cache.put(f"new{i}", _value(f"new{i}"))
            cache.commit()
    assert len(_keys(tmp_path)) == 124
    _grow(tmp_path, "new24")
    with ItemCacheFile(tmp_path, 7) as cache:
        assert cache.prunes
        cache.get_many(["k0", "new24"])
        cache.commit()
    assert _keys(tmp_path) == {"k0", "new24"}


def test_the_file_stays_within_a_quarter_of_what_a_run_uses_over_many_runs_that_change_items(
    tmp_path: Path,
) -> None:
    """Each run uses 200 items, 2 of them new (1 % changed): the file never holds more than 1.25x plus one run's."""
    live = [f"v0-{i}" for i in range(200)]
    _grow(tmp_path, *live)
    sizes = []
    for run in range(1, 101):
        live = [*live[2:], f"v{run}-0", f"v{run}-1"]
        with ItemCacheFile(tmp_path, 7) as cache:
            found = cache.get_many(live)
            for key in live:
                if key not in found:
                    cache.put(key, _value(key))
            cache.commit()
        sizes.append(len(_keys(tmp_path)))
    assert max(sizes) <= 200 * 1.25 + 2
    assert sizes.count(200) >= 3  # it did prune back to what a run uses, more than once


def test_a_run_that_fails_before_commit_prunes_nothing(tmp_path: Path) -> None:
    with ItemCacheFile(tmp_path, 7) as cache:
        cache.put("a", b"a")
        cache.commit()
    _grow(tmp_path, "x")  # due for a prune
    with ItemCacheFile(tmp_path, 7) as cache:
        assert cache.prunes
        cache.put("b", b"b")  # no commit: the archive did not verify
    assert _keys(tmp_path) == {"a", "x", "b"}


def test_the_file_stays_within_a_quarter_of_a_runs_bytes_when_few_entries_hold_most_of_them(tmp_path: Path) -> None:
    """As an export's cache: many small entries (events) and a few big ones (their runs, 16 events each).

    A 1 % edit changes 1 % of the small entries but ~16 % of the big ones, so
    counting entries lets the bytes grow far past a quarter before a prune.
    """
    small = [(f"s0-{i}", 300) for i in range(400)]
    big = [(f"b0-{i}", 16 * 300) for i in range(25)]

    def run(live: list[tuple[str, int]]) -> tuple[int, int]:
        """One export's use of the cache; the bytes its entries hold then, and the file's size."""
        with ItemCacheFile(tmp_path, 7) as cache:
            found = cache.get_many([key for key, _ in live])
            for key, size in live:
                if key not in found:
                    cache.put(key, key.encode().ljust(size, b"."))
            cache.commit()
        with sqlite3.connect(tmp_path / "7" / FILENAME) as db:
            (held,) = db.execute("SELECT sum(length(value)) FROM items").fetchone()
        db.close()
        return held, (tmp_path / "7" / FILENAME).stat().st_size

    first, first_file = run(small + big)
    held, files = [], []
    for number in range(1, 101):
        small = [*small[4:], *((f"s{number}-{i}", 300) for i in range(4))]
        big = [*big[4:], *((f"b{number}-{i}", 16 * 300) for i in range(4))]
        entries, file = run(small + big)
        held.append(entries)
        files.append(file)
    one_run = 4 * 300 + 4 * 16 * 300  # what each run adds
    assert max(held) <= first * PRUNE_SLACK + one_run
    assert held.count(first) >= 3  # it did prune back to what a run uses, more than once
    # The file itself: a first export packs its pages full; pages that prunes emptied and later
    # runs refilled are about 70 % full, as in any B-tree that deletes and inserts at random.
    assert max(files) <= first_file * PRUNE_SLACK / 0.7


def test_an_export_that_starts_while_another_prunes_does_not_make_either_drop_what_the_other_used(
    tmp_path: Path,
) -> None:
    """Two exports of one user at once (a scheduled run and `lifeboat export`), both due for a prune."""
    used = [f"k{i}" for i in range(2 * WRITE_BATCH)]  # more than a batch: the first's notes are in the file
    _grow(tmp_path, *used)
    _grow(tmp_path, *(f"old{i}" for i in range(len(used))))  # nobody uses these any more: due for a prune
    with ItemCacheFile(tmp_path, 7) as first:
        assert first.prunes
        assert len(first.get_many(used)) == len(used)
        with ItemCacheFile(tmp_path, 7) as second:  # starts, reads one entry and ends first
            assert second.get_many(used[:1]) == {used[0]: _value(used[0])}
            second.commit()
        first.commit()
    assert _keys(tmp_path) == set(used)


def test_a_file_written_by_other_writers_is_emptied_and_counts_as_a_first_export(tmp_path: Path) -> None:
    """After an upgrade that changed a writer no entry can be read again: the file starts afresh at once."""
    with ItemCacheFile(tmp_path, 7) as cache:
        cache.put("k", b"v")
        cache.commit()
    with sqlite3.connect(tmp_path / "7" / FILENAME) as db:  # as the previous version's writers left it
        db.execute("UPDATE meta SET value = 12345 WHERE name = 'writers'")
    with ItemCacheFile(tmp_path, 7) as cache:
        assert not cache.holds_entries()
    assert _keys(tmp_path) == set()
    with ItemCacheFile(tmp_path, 7) as cache:  # and this version's own entries stay
        cache.put("k2", b"v2")
        cache.commit()
    with ItemCacheFile(tmp_path, 7) as cache:
        assert cache.get_many(["k2"]) == {"k2": b"v2"}


def test_the_cache_file_is_readable_by_the_service_alone(tmp_path: Path) -> None:
    """It holds the user's own cards and events, like the archives: no group or other access."""
    (tmp_path / "7").mkdir(mode=0o700)
    (tmp_path / "7" / FILENAME).touch(mode=0o644)  # as an earlier version made it, with the umask's mode
    with ItemCacheFile(tmp_path, 7) as cache:
        cache.put("k", b"v")
        cache.commit()
    assert (tmp_path / "7" / FILENAME).stat().st_mode & 0o077 == 0
