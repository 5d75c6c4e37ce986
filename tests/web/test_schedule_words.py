"""Settings says how late a schedule really starts, from the same constants the scheduler uses (user trial 7, item 5).

It said "a fixed few minutes after the chosen time" while weekly runs start up
to 2 hours and monthly ones up to 4 hours later, so a run chosen for Sunday
23:30 started on Monday.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from flask.testing import FlaskClient

from jobs import schedule as schedule_module
from jobs.schedule import JITTER_WINDOWS, ScheduleSpec, jitter, upcoming_runs
from jobs.user_schedule import describe, span_words, spread_words
from store import Schedule
from store.base import utcnow
from tests.web.conftest import csrf_token


def test_the_spread_is_worded_from_the_jitter_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "up to 30 minutes for daily, 2 hours for weekly and 4 hours for monthly exports" in spread_words()
    assert "can start on the next day" in spread_words()
    assert "few minutes" not in spread_words()
    monkeypatch.setitem(JITTER_WINDOWS, "monthly", dt.timedelta(hours=6, minutes=15))
    assert "6 hours 15 minutes for monthly" in spread_words()  # no copy of the numbers to forget


@pytest.mark.parametrize(
    ("span", "words"),
    [(dt.timedelta(minutes=1), "1 minute"), (dt.timedelta(hours=1, minutes=32), "1 hour 32 minutes"),
     (dt.timedelta(hours=2), "2 hours"), (dt.timedelta(seconds=59), "0 minutes")],
)  # fmt: skip
def test_spans_read_as_words(span: dt.timedelta, words: str) -> None:
    assert span_words(span) == words


def test_the_api_description_names_this_account_s_real_delay_and_no_odd_last_day() -> None:
    row = Schedule(user_id=1, frequency="monthly", time_of_day="23:00", timezone="UTC", weekday=0, day_of_month=1,
                   enabled=False)  # fmt: skip
    delay = jitter(ScheduleSpec.from_row(row))
    text = describe(row)
    assert text.startswith("Monthly: on day 1 of every month at 23:00 UTC, starting ")
    assert f"starting {span_words(delay)} later (this account's fixed delay)" in text
    assert "last day" not in text
    row.day_of_month = 31
    assert "on day 31 of every month (or the last day of a shorter month)" in describe(row)


def test_the_settings_page_says_the_spread_and_the_own_delay_and_lists_the_real_times(
    signed_in: FlaskClient, alice_user: int
) -> None:
    page = html.unescape(signed_in.get("/settings").get_data(as_text=True))
    assert "a fixed few minutes" not in page
    assert spread_words() in page
    form = {"frequency": "weekly", "time_of_day": "23:30", "weekday": "6", "day_of_month": "1",
            "timezone": "Europe/Berlin", "csrf_token": csrf_token(signed_in, "/settings")}  # fmt: skip
    preview = html.unescape(signed_in.post("/settings/schedule", data={**form, "preview": "1"}).get_data(as_text=True))
    spec = ScheduleSpec(frequency="weekly", time_of_day="23:30", timezone="Europe/Berlin", weekday=6,
                        user_id=alice_user)  # fmt: skip
    first = upcoming_runs(spec, utcnow())[0]
    listed = re.search(r'id="preview-runs"><li><time datetime="([^"]+)"', preview)
    assert listed is not None and dt.datetime.fromisoformat(listed.group(1)) == first  # jitter included
    signed_in.post("/settings/schedule", data={**form, "save": "1"})
    saved = html.unescape(signed_in.get("/settings").get_data(as_text=True))
    assert f"Your weekly exports start {span_words(schedule_module.jitter(spec))} after the chosen time." in saved


def _save_daily(client: FlaskClient, time_of_day: str = "02:00") -> None:
    form = {"frequency": "daily", "time_of_day": time_of_day, "weekday": "0", "day_of_month": "1",
            "timezone": "Europe/Berlin", "csrf_token": csrf_token(client, "/settings"), "save": "1"}  # fmt: skip
    assert client.post("/settings/schedule", data=form).status_code == 302


def test_the_overview_says_why_the_next_export_is_later_than_the_chosen_time(
    signed_in: FlaskClient, alice_user: int
) -> None:
    # User trial 9: "NEXT EXPORT ... 02:02 CET / Daily at 02:00" with no reason for the 2 minutes.
    _save_daily(signed_in)
    spec = ScheduleSpec(frequency="daily", time_of_day="02:00", timezone="Europe/Berlin", user_id=alice_user)
    page = html.unescape(signed_in.get("/").get_data(as_text=True))
    next_export = page[page.index("<dt>Next export</dt>") :]
    expected = f"Daily at 02:00 (Europe/Berlin), starting {span_words(jitter(spec))} later (this account's fixed delay)"
    assert expected in next_export[: next_export.index("</dd>")]


def test_a_preview_of_next_runs_says_they_include_the_fixed_delay(signed_in: FlaskClient, alice_user: int) -> None:
    form = {"frequency": "monthly", "time_of_day": "04:00", "weekday": "0", "day_of_month": "3",
            "timezone": "UTC", "csrf_token": csrf_token(signed_in, "/settings"), "preview": "1"}  # fmt: skip
    page = html.unescape(signed_in.post("/settings/schedule", data=form).get_data(as_text=True))
    spec = ScheduleSpec(frequency="monthly", time_of_day="04:00", timezone="UTC", day_of_month=3, user_id=alice_user)
    said = re.search(r'id="preview-delay">([^<]+)<', page)
    assert said is not None
    assert (
        said.group(1) == f"Each time is {span_words(jitter(spec))} after the chosen time: this account's fixed delay."
    )
