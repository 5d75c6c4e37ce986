"""`PathRegistry` checks each folder name once per archive; it must still refuse what it refused before."""

from __future__ import annotations

from exporters.archive.paths import PathRegistry


def test_a_registry_checks_a_folder_name_once_but_still_refuses_a_bad_file_name_under_it() -> None:
    registry = PathRegistry()
    assert registry.add("notes/Home/a.md") is None
    assert registry.add("notes/Home/b.md") is None
    assert "is not a name every system accepts" in (registry.add("notes/Home/CON") or "")
    assert "is not a name every system accepts" in (registry.add("notes/trailing./c.md") or "")
    assert "clashes" in (registry.add("notes/home/A.md") or "")
