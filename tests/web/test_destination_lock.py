"""Settings → Destinations: choosing S3 Object Lock for a bucket, in words, with the same rules as the API and CLI."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.test_destination_edit import bucket_fields, edit
from tests.web.test_destinations_page import PAGE, post, rows, s3_form


def test_a_bucket_added_with_a_lock_keeps_it_and_the_page_says_what_it_means(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    assert post(signed_in, "/s3", **s3_form(lock_mode="compliance", lock_days="30")).status_code == 302
    (row,) = rows(app, alice_user)
    assert (row.settings["lock_mode"], row.settings["lock_days"]) == ("compliance", 30)
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert f'id="lock-summary-{row.id}">Each archive is locked for 30 days after delivery (compliance mode' in page
    assert "Protect past archives (S3 Object Lock)" in page


def test_a_lock_without_days_is_refused_next_to_the_days_field_and_nothing_is_saved(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    answer = post(signed_in, "/s3", **s3_form(lock_mode="governance"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert 'id="lock_days-error">Lock archives for a whole number of days from 1 to 36500.</p>' in page
    assert rows(app, alice_user) == []
    hostile = post(signed_in, "/s3", **s3_form(lock_mode="forever", lock_days="5"))
    assert hostile.status_code == 400 and "Not a valid choice" in hostile.get_data(as_text=True)
    assert rows(app, alice_user) == []


def test_switching_the_lock_off_while_editing_ignores_the_days_and_stops_locking(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    assert post(signed_in, "/s3", **s3_form(lock_mode="governance", lock_days="7")).status_code == 302
    (row,) = rows(app, alice_user)
    edited = edit(signed_in, row.id, **bucket_fields(lock_mode="off", lock_days="7"))
    assert "your changes are saved" in edited.get_data(as_text=True)
    (row,) = rows(app, alice_user)
    assert "lock_days" not in row.settings and row.settings["lock_mode"] == "off"
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert f'id="lock-summary-{row.id}">Archives are not locked' in page


def test_the_policy_shown_for_a_locking_bucket_allows_setting_retention(signed_in: FlaskClient) -> None:
    form = {k: v for k, v in s3_form(lock_mode="compliance", lock_days="30").items() if k != "save"}
    text = post(signed_in, "/s3", **form, show_policy="1").get_data(as_text=True)
    assert "s3:PutObjectRetention" in text and "s3:GetBucketObjectLockConfiguration" in text
