"""`PathRegistry` checks each folder name once per archive, and `unsafe_path_reason` safe paths in one match;
both must still refuse what they refused before."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.archive.paths import PathRegistry, unsafe_path_reason, unsafe_path_steps


def test_a_registry_checks_a_folder_name_once_but_still_refuses_a_bad_file_name_under_it() -> None:
    registry = PathRegistry()
    assert registry.add("notes/Home/a.md") is None
    assert registry.add("notes/Home/b.md") is None
    assert "is not a name every system accepts" in (registry.add("notes/Home/CON") or "")
    assert "is not a name every system accepts" in (registry.add("notes/trailing./c.md") or "")
    assert "clashes" in (registry.add("notes/home/A.md") or "")


_PIECES = ["a", "b.md", ".", "..", "...", ".x", "", "/", "\\", "\x00", "\x1f", "\x7f", "C:", "c:x", "é", "\ud800"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=7) | st.text(max_size=12))
def test_the_quick_safe_path_check_agrees_with_every_step_of_the_full_one(pieces: list[str] | str) -> None:
    path = pieces if isinstance(pieces, str) else "".join(pieces)
    assert unsafe_path_reason(path) == unsafe_path_steps(path)
