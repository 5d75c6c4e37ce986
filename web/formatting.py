"""How figures and times read on pages: sizes in human units, plurals, times in the user's zone.

Why one module: the dashboard, the run status JSON the page polls and the
error pages must say "4.5 MB" and "Sun 6 Dec 2026, 14:07 CET" the same way,
and Jinja filters registered once reach every template.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from markupsafe import Markup, escape

_UNITS = ("KB", "MB", "GB", "TB")


def human_size(size: int | None) -> str:
    """`512 bytes`, `1 byte`, `4.5 KB`, `12 MB`: decimal units (as file managers show them).

    One decimal below ten units, whole numbers above, so a size never reads
    "0.0 MB" and never claims more precision than is useful.
    """
    value = float(size or 0)
    if value < 1000:
        return plural(int(value), "byte")
    for unit in _UNITS:
        value /= 1000
        if value < 999.95 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:,.0f} {unit}"
    raise AssertionError("unreachable")


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 attachment`, `2 attachments`: the count with its noun.

    Thousands separated ("12,000 events"), as `counts_line` writes them in README.txt,
    the CLI and the history (exporters.archive.counts).
    """
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def thousands(n: int | None) -> str:
    """`1,004`: a whole number as every page writes it (empty for None)."""
    return "" if n is None else f"{n:,}"


# A command for the standard tools inside a sentence: `gpg --quick-set-expire FPR 1y '*'`, `age --decrypt ...`,
# up to the comma or bracket that ends it in the sentence.
_COMMAND = re.compile(r"\b(?:gpg|age)(?= --)(?: [^\s,()]+)+")


def commands(text: str | None, wrap: bool = False) -> Markup:
    """`text`, escaped, with each `gpg`/`age` command in it as `<code class="command">`: one unbroken line.

    Why: at 390 px a browser broke `gpg --quick-set-expire FPR 1y` after a hyphen, in the middle of
    `--`, so the line shown was not the command to type (user trial). The stylesheet keeps a command
    on one line and scrolls it sideways in its own box when it is wider than the phone; the box takes
    keyboard focus (tabindex), so it can be scrolled without a pointer.
    `wrap`: the command may break between its words, never inside one (each word is a nowrap
    `<span>`), for a short command in a hint, which a scrolling box showed cut off at 390 px
    (`you@example.o`, user trial 8).
    """
    escaped = str(escape(text or ""))
    # Matching on the escaped text: `'` is `&#39;` there, which the pattern's character class allows.
    code = _wrapped_code if wrap else _code
    return Markup(_COMMAND.sub(code, escaped))  # noqa: S704 - escaped above; `_code` adds only the tags


def _code(match: re.Match[str]) -> str:
    command = match.group()
    end = "." if command.endswith(".") else ""  # the sentence's full stop, not the command's
    return f'<code class="command" tabindex="0">{command.removesuffix(end)}</code>{end}'


def _wrapped_code(match: re.Match[str]) -> str:
    command = match.group()
    end = "." if command.endswith(".") else ""
    words = " ".join(f"<span>{word}</span>" for word in command.removesuffix(end).split(" "))
    return f'<code class="command wraps">{words}</code>{end}'


def duration(seconds: float | None) -> str:
    """`under a second`, `42 s`, `3 min 5 s`, `2 h 4 min`: how long something took, to the unit that matters.

    Empty for None (still going, or never measured), so a template can write `or "…"`.
    """
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 1:
        return "under a second"
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def zone(name: str | None) -> dt.tzinfo:
    """The user's zone; UTC when it is unset or unknown (a page must still render)."""
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local_time(value: dt.datetime | None, timezone: str | None, *, with_date: bool = True) -> str:
    """`Sun 6 Dec 2026, 14:07 CET` in `timezone` (naive values are UTC, as the store keeps them)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(zone(timezone))
    clock = f"{local:%H:%M} {local.tzname() or ''}".strip()
    return f"{local:%a} {local.day} {local:%b %Y}, {clock}" if with_date else clock


def iso(value: dt.datetime | None) -> str | None:
    """Machine-readable time for `<time datetime>` and JSON (UTC, with its offset)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def register(app: Flask) -> None:
    app.add_template_filter(human_size, "human_size")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(iso, "iso")
    app.add_template_filter(duration, "duration")
    app.add_template_global(plural, "plural")
    app.add_template_filter(thousands, "thousands")
    app.add_template_filter(commands, "commands")
