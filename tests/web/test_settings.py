"""The settings page: schedule with its next-run preview, archive options, API tokens."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from jobs.api_tokens import create_token
from jobs.schedule import ScheduleSpec, upcoming_runs
from store import Database, Schedule, User, get_db
from store.access import ApiToken
from tests.conftest import OpenPGPKeyMaker, UserKey
from tests.web.conftest import csrf_token
from web.formatting import local_time

DAILY_BERLIN = {"frequency": "daily", "time_of_day": "03:30", "weekday": "0", "day_of_month": "1"}


def post_schedule(client: FlaskClient, button: str = "save", **fields: str) -> TestResponse:
    form = {**DAILY_BERLIN, "timezone": "Europe/Berlin", button: "1", **fields}
    form["csrf_token"] = csrf_token(client, "/settings")
    return client.post("/settings/schedule", data=form)


def runs_listed(page: str, list_id: str) -> list[str]:
    block = re.search(rf'<ol class="next-runs" id="{list_id}">(.*?)</ol>', page, re.S)
    return re.findall(r'<time datetime="([^"]+)">', block.group(1)) if block else []


def test_the_settings_page_needs_sign_in(app: Flask) -> None:
    response = app.test_client().get("/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_saving_a_schedule_shows_the_next_three_runs_in_the_users_zone(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    assert post_schedule(signed_in).status_code == 302
    page = signed_in.get("/settings").get_data(as_text=True)
    runs = [dt.datetime.fromisoformat(run) for run in runs_listed(page, "next-runs")]
    assert len(runs) == 3
    with get_db(app).session() as session:
        row = session.query(Schedule).filter_by(user_id=alice_user).one()
        assert (row.frequency, row.time_of_day, row.timezone, row.enabled) == ("daily", "03:30", "Europe/Berlin", True)
        assert runs[0] == row.next_run_at
        assert runs[1:] == upcoming_runs(ScheduleSpec.from_row(row), row.next_run_at, 2)
        user = session.get(User, alice_user)
        assert user is not None and user.timezone == "Europe/Berlin"
    berlin = [run.astimezone(dt.timezone(dt.timedelta(hours=1))) for run in runs]  # CET in winter
    assert [b.strftime("%H") for b in berlin] == ["03"] * 3
    assert "(Europe/Berlin)" in page


def test_preview_shows_the_runs_without_saving(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    response = post_schedule(signed_in, "preview", frequency="monthly", day_of_month="31")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(runs_listed(page, "preview-runs")) == 3
    with get_db(app).session() as session:
        assert session.query(Schedule).filter_by(user_id=alice_user).first() is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "Choose a time zone from the list"),
        ({"timezone": "Europe/Berlin\r\nX: y"}, "Choose a time zone from the list"),
        ({"time_of_day": "25:00"}, "Give the time as HH:MM"),
        ({"day_of_month": "32"}, "Choose a day from 1 to 31."),
        ({"frequency": "hourly"}, "Not a valid choice"),
    ],
)
def test_a_wrong_schedule_is_refused_with_words_and_nothing_saved(
    app: Flask, signed_in: FlaskClient, alice_user: int, fields: dict[str, str], words: str
) -> None:
    response = post_schedule(signed_in, **fields)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    with get_db(app).session() as session:
        assert session.query(Schedule).filter_by(user_id=alice_user).first() is None


def test_switching_the_schedule_off_clears_the_next_runs(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    post_schedule(signed_in)
    assert post_schedule(signed_in, frequency="off").status_code == 302
    page = signed_in.get("/settings").get_data(as_text=True)
    assert runs_listed(page, "next-runs") == []
    assert "No scheduled exports." in page
    with get_db(app).session() as session:
        assert session.query(Schedule).filter_by(user_id=alice_user).one().enabled is False


def test_an_unconfirmed_account_may_preview_but_not_save_a_schedule(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    with get_db(app).session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        user.email_confirmed_at = None
    assert post_schedule(signed_in, "preview").status_code == 200
    refused = post_schedule(signed_in)
    assert refused.status_code == 403
    assert "Confirm your email address first" in refused.get_data(as_text=True)


@pytest.mark.parametrize(("choice", "stored"), [("4.0", "4.0"), ("3.0", "3.0"), ("default", None)])
def test_the_vcard_version_is_saved_for_later_exports(
    app: Flask, signed_in: FlaskClient, alice_user: int, choice: str, stored: str | None
) -> None:
    token = csrf_token(signed_in, "/settings")
    form = {"vcard_version": choice, "kinds": ["contacts", "calendars", "notes"], "csrf_token": token}
    assert signed_in.post("/settings/archive", data=form).status_code == 302
    with get_db(app).session() as session:
        user = session.get(User, alice_user)
        assert user is not None and user.vcard_version == stored


def test_the_kinds_to_include_round_trip_through_the_page_and_the_api(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    token = csrf_token(signed_in, "/settings")
    form = {"vcard_version": "default", "kinds": ["notes", "calendars"], "csrf_token": token}
    assert signed_in.post("/settings/archive", data=form).status_code == 302
    page = signed_in.get("/settings").get_data(as_text=True)
    checked = re.findall(r'<input checked id="kinds-\d" name="kinds" type="checkbox" value="(\w+)">', page)
    assert checked == ["calendars", "notes"]
    with get_db(app).session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None and user.export_kinds == "calendars,notes"
        user.export_kinds = "contacts"  # as PUT /api/v1/options stores it
    page = signed_in.get("/settings").get_data(as_text=True)
    assert re.findall(r'<input checked id="kinds-\d" name="kinds" type="checkbox" value="(\w+)">', page) == ["contacts"]


def test_leaving_every_kind_out_is_refused_in_words_and_changes_nothing(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    token = csrf_token(signed_in, "/settings")
    refused = signed_in.post("/settings/archive", data={"vcard_version": "4.0", "csrf_token": token})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert 'id="kinds-error">Choose at least one kind of data to include' in page
    assert 'aria-describedby="kinds-error"' in page
    with get_db(app).session() as session:
        user = session.get(User, alice_user)
        assert user is not None and user.export_kinds is None and user.vcard_version is None


CHECKED_KIND = re.compile(r'<input checked id="kinds-\d" name="kinds" type="checkbox" value="(\w+)">')


def test_a_refused_schedule_leaves_the_other_sections_showing_their_saved_values(
    app: Flask, signed_in: FlaskClient, alice_user: int, db: Database, age_key: UserKey
) -> None:
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        user.export_kinds, user.vcard_version, user.seal_key = "contacts,notes", "4.0", age_key.public
    refused = post_schedule(signed_in, timezone="Not/AZone")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Choose a time zone from the list" in page
    assert CHECKED_KIND.findall(page) == ["contacts", "notes"]
    assert '<option selected value="4.0">' in page
    assert age_key.public in page
    # So saving the archive options next, as the page now shows them, works.
    token = csrf_token(signed_in, "/settings")
    form = {"vcard_version": "4.0", "kinds": CHECKED_KIND.findall(page), "csrf_token": token}
    assert signed_in.post("/settings/archive", data=form).status_code == 302


def test_refused_archive_options_leave_the_schedule_showing_its_saved_values(
    signed_in: FlaskClient, alice_user: int
) -> None:
    assert post_schedule(signed_in, frequency="monthly", day_of_month="15", time_of_day="04:45").status_code == 302
    token = csrf_token(signed_in, "/settings")
    refused = signed_in.post("/settings/archive", data={"vcard_version": "4.0", "csrf_token": token})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Choose at least one kind" in page
    assert '<option selected value="monthly">' in page
    assert 'value="04:45"' in page and 'value="15"' in page and 'value="Europe/Berlin"' in page
    assert CHECKED_KIND.findall(page) == []  # the refused form keeps what was posted


@pytest.mark.parametrize("path", ["/settings/schedule", "/settings/archive", "/settings/tokens"])
def test_every_settings_form_needs_its_csrf_token(signed_in: FlaskClient, path: str) -> None:
    assert signed_in.post(path, data={"frequency": "off", "vcard_version": "4.0", "name": "x"}).status_code == 400


def test_a_token_is_shown_once_listed_and_revoked(signed_in: FlaskClient) -> None:
    token = csrf_token(signed_in, "/settings")
    created = signed_in.post("/settings/tokens", data={"name": "NAS script", "lifetime": "30", "csrf_token": token})
    page = created.get_data(as_text=True)
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="token-value" id="new-token">([^<]+)</code>', page)
    assert secret is not None
    # The page that shows the secret already lists the token (SQLite's read snapshot once hid it).
    assert '<td class="token-name">NAS script</td>' in page and "No tokens yet" not in page
    later = signed_in.get("/settings").get_data(as_text=True)
    assert "NAS script" in later and secret.group(1) not in later
    revoke = re.search(r'action="(/settings/tokens/[^"]+/revoke)"', later)
    assert revoke is not None
    assert signed_in.post(revoke.group(1), data={"csrf_token": token}).status_code == 302
    assert signed_in.post("/settings/tokens/not-a-token/revoke", data={"csrf_token": token}).status_code == 404


def test_the_settings_page_takes_a_key_shows_it_and_stops_encrypting(
    app: Flask, signed_in: FlaskClient, alice_user: int, db: Database, age_key: UserKey
) -> None:
    def post(**fields: str) -> str:
        data = {"csrf_token": csrf_token(signed_in, "/settings"), **fields}
        response = signed_in.post("/settings/encryption", data=data, follow_redirects=True)
        return response.get_data(as_text=True)

    assert "Archives go out as plain zip files" in signed_in.get("/settings").get_data(as_text=True)
    page = post(seal_key=age_key.public, save="1")
    assert "archives are encrypted to your age key" in page and "age --decrypt -i" in page
    with db.session() as session:
        assert session.get(User, alice_user).seal_key == age_key.public  # type: ignore[union-attr]
    page = post(seal_key="AGE-SECRET-KEY-1XYZ", save="1")
    assert "your private key" in page
    with db.session() as session:
        assert session.get(User, alice_user).seal_key == age_key.public  # type: ignore[union-attr]  # unchanged
    page = post(seal_key=age_key.public, stop="1")
    assert "no longer encrypted" in page
    with db.session() as session:
        assert session.get(User, alice_user).seal_key is None  # type: ignore[union-attr]


def test_the_settings_form_without_its_csrf_token_changes_nothing(
    signed_in: FlaskClient, alice_user: int, db: Database, age_key: UserKey
) -> None:
    response = signed_in.post("/settings/encryption", data={"seal_key": age_key.public, "save": "1"})
    assert response.status_code == 400
    with db.session() as session:
        assert session.get(User, alice_user).seal_key is None  # type: ignore[union-attr]


def test_a_private_key_pasted_by_mistake_is_refused_and_not_sent_back_and_the_answer_opens_at_its_section(
    signed_in: FlaskClient, alice_user: int
) -> None:
    settings = signed_in.get("/settings").get_data(as_text=True)
    assert 'action="/settings/encryption#encryption"' in settings
    secret = "AGE-SECRET-KEY-1" + "Q" * 58
    data = {"csrf_token": csrf_token(signed_in, "/settings"), "seal_key": secret, "save": "1"}
    answer = signed_in.post("/settings/encryption", data=data)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "your private key" in page and secret not in page
    data = {"csrf_token": csrf_token(signed_in, "/settings"), "seal_key": "  ", "save": "1"}
    empty = signed_in.post("/settings/encryption", data=data).get_data(as_text=True)
    assert "Paste your public key." in empty and "Stop encrypting" not in empty  # no such button while it is off


def test_the_same_key_twice_or_a_cut_off_openpgp_key_is_refused_on_the_page_in_words_and_nothing_is_saved(
    signed_in: FlaskClient, alice_user: int, db: Database, age_key: UserKey, openpgp_key: UserKey
) -> None:
    for key, words in (
        (f"{age_key.public}\r\n{age_key.public}", "That gives the same key twice (age key "),
        (f"{age_key.public} {age_key.public}", "That line holds the same key twice: give each key once"),
        (openpgp_key.public[:300], "That OpenPGP key could not be read: it looks cut off (its END line is missing)"),
    ):
        data = {"csrf_token": csrf_token(signed_in, "/settings"), "seal_key": key, "save": "1"}
        answer = signed_in.post("/settings/encryption", data=data)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400 and words in page and "plugin" not in page and "Malformed" not in page
    assert '<code class="command" tabindex="0">gpg --armor --export you@example.org</code>, from its BEGIN' in page
    with db.session() as session:
        assert session.get(User, alice_user).seal_key is None  # type: ignore[union-attr]


@pytest.mark.slow  # real gpg keys or real processes: CI's whole suite, not test-fast
def test_the_settings_page_refuses_an_expired_key_and_shows_the_date_and_a_warning_for_one_expiring_soon(
    signed_in: FlaskClient, alice_user: int, db: Database, openpgp_key: UserKey, openpgp_key_expiring: OpenPGPKeyMaker
) -> None:
    def post(key: str) -> tuple[int, str]:
        data = {"csrf_token": csrf_token(signed_in, "/settings"), "seal_key": key, "save": "1"}
        response = signed_in.post("/settings/encryption", data=data, follow_redirects=True)
        return response.status_code, response.get_data(as_text=True)

    status, page = post(openpgp_key_expiring("1y", made="20200101T000000"))
    assert status == 400 and "expired on 2020-12-31, so archives cannot be encrypted to it" in page
    assert "gpg --quick-set-expire " in page
    with db.session() as session:
        assert session.get(User, alice_user).seal_key is None  # type: ignore[union-attr]
    status, page = post(openpgp_key_expiring("10d"))
    date = f"{dt.datetime.now(dt.UTC) + dt.timedelta(days=10):%Y-%m-%d}"
    assert status == 200 and "archives are encrypted to your OpenPGP key" in page
    assert re.search(rf'id="seal-expiry">The key expires on <time datetime="[^"]+">{date}</time>', page)
    warning = re.search(r'<p id="seal-warning" class="flash warning" role="alert">(.+?)</p>', page)
    assert warning is not None and f"expires on {date}: from then on archives cannot be encrypted" in warning[1]
    assert warning[1].count('<code class="command" tabindex="0">gpg --quick-set-expire ') == 2  # one line each
    status, page = post(openpgp_key.public)  # made to never expire
    assert 'id="seal-expiry">The key does not expire.' in page and 'id="seal-warning"' not in page


def test_api_tokens_show_their_times_in_the_users_own_zone(
    signed_in: FlaskClient, db: Database, alice_user: int
) -> None:
    """A user trial: the tokens table was the only place on the user's pages with times in UTC."""
    used = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)
    with db.session(write=True) as session:
        create_token(session, alice_user, "backup script", days=30, now=used)
        token = session.query(ApiToken).filter_by(user_id=alice_user).one()
        token.last_used_at = used
        zone = session.get(User, alice_user).timezone  # type: ignore[union-attr]
        expires = token.expires_at
    assert zone and zone != "UTC"
    page = signed_in.get("/settings").get_data(as_text=True)
    row = re.search(r'<td class="token-name">backup script</td>(.+?)</tr>', page, re.S)
    assert row is not None
    assert f">{local_time(used, zone)}</time>" in row[1] and f">{local_time(expires, zone)}</time>" in row[1]
    assert "UTC" not in row[1]
