"""The brand is a drawn mark, not the ⛵ emoji, which Debian's Chromium (no emoji font) showed as an empty box."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[2]


def test_no_template_or_static_file_uses_the_sailboat_emoji() -> None:
    for folder in ("templates", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".html", ".css", ".js"):
                assert "⛵" not in path.read_text(encoding="utf-8"), path


def test_the_brand_link_is_named_by_its_text_and_the_mark_is_hidden_from_screen_readers(app: Flask) -> None:
    page = app.test_client().get("/login").get_data(as_text=True)
    link = page[page.index('<a class="brand"') : page.index("</a>", page.index('<a class="brand"')) + 4]
    assert '<svg class="brand-mark"' in link and 'aria-hidden="true"' in link and 'focusable="false"' in link
    assert link.endswith("</svg>Lifeboat</a>")
