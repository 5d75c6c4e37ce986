"""How sizes, plurals, times and run stages read on the pages."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.export import split_stage
from store import ExportRun
from web.formatting import commands, human_size, local_time, plural
from web.run_view import run_view


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (2048, "2.0 KB"),
        (20_480, "20 KB"),
        (3_500_000, "3.5 MB"),
        (999_999_999, "1.0 GB"),
        (12_000_000_000, "12 GB"),
    ],
)
def test_sizes_read_in_human_units_never_zero_point_zero(size: int, words: str) -> None:
    assert human_size(size) == words


def test_plurals_agree_with_their_count() -> None:
    assert plural(1, "attachment") == "1 attachment"
    assert plural(12000, "event") == "12,000 events"  # as counts_line writes them


def test_times_show_in_the_users_zone_with_its_abbreviation() -> None:
    at = dt.datetime(2026, 12, 6, 13, 7, tzinfo=dt.UTC)
    assert local_time(at, "Europe/Berlin") == "Sun 6 Dec 2026, 14:07 CET"
    assert local_time(at, "Not/AZone") == "Sun 6 Dec 2026, 13:07 UTC"


def test_stage_carries_items_done_of_total() -> None:
    assert split_stage("calendars:120/500") == ("calendars", 120, 500)
    assert split_stage("deliver") == ("deliver", None, None)
    assert split_stage(None) == (None, None, None)


def test_a_retrying_run_says_which_attempt_failed_and_when_the_next_one_is() -> None:
    now = dt.datetime(2026, 12, 6, 13, 0, tzinfo=dt.UTC)
    run = ExportRun(
        id="r1",
        state="retrying",
        stage="starting",
        progress=0,
        attempt=2,
        max_attempts=5,
        trigger="manual",
        not_before=now + dt.timedelta(minutes=4),
        created_at=now,
    )
    view = run_view(run, "Europe/Berlin", now=now)
    assert view.label == "Attempt 2 of 5 did not finish. Next attempt at 14:04 CET (in 4 minutes)."
    assert view.next_attempt_at == "2026-12-06T13:04:00+00:00"


def test_a_hints_command_may_wrap_between_its_words_only_and_other_commands_stay_one_scrolling_line() -> None:
    text = "A key block (gpg --armor --export you@example.org). Open with age --decrypt -i K x.zip.age."
    assert str(commands(text, wrap=True)) == (
        'A key block (<code class="command wraps"><span>gpg</span> <span>--armor</span> <span>--export</span> '
        '<span>you@example.org</span></code>). Open with <code class="command wraps"><span>age</span> '
        "<span>--decrypt</span> <span>-i</span> <span>K</span> <span>x.zip.age</span></code>."
    )
    assert '<code class="command" tabindex="0">gpg --armor --export you@example.org</code>' in str(commands(text))
    assert "&lt;b&gt;" in str(commands("<b> gpg --armor --export <b>", wrap=True))  # escaped first
