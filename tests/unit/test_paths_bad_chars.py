"""`sanitize_component`'s one-regex replacement of bad characters agrees with `_bad_char` everywhere."""

from __future__ import annotations

import sys

from exporters.archive.paths import _BAD_CHARS, _bad_char


def test_the_bad_character_class_matches_bad_char_at_every_code_point() -> None:
    wrong = [
        hex(code) for code in range(sys.maxunicode + 1) if bool(_BAD_CHARS.fullmatch(chr(code))) != _bad_char(chr(code))
    ]
    assert wrong == []
