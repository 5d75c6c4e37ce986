"""The user's History lists every support action with its reason, paged, and support's looks as one line."""

from __future__ import annotations

import datetime as dt
import re

from flask.testing import FlaskClient

from jobs.audit import Actor, record
from store import Database, User
from tests.web.conftest import csrf_token

STAFF = Actor(user_id=99, email="sam@support.example.com", role="support", address="192.0.2.7")
START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _support_rows(db: Database, user_id: int, actions: int, views: int) -> None:
    """`actions` pauses (reason "action N", one a minute) and, after each of the first `views`, a view."""
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        for n in range(max(actions, views)):
            at = START + dt.timedelta(minutes=2 * n)
            if n < actions:
                record(session, STAFF, "schedule.pause", now=at, target=user, reason=f"action {n}")
            if n < views:
                record(session, STAFF, "view_user", now=at + dt.timedelta(minutes=1), target=user)


def test_every_support_action_is_listed_with_its_reason_over_pages_and_views_are_one_line(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    _support_rows(db, alice_user, actions=60, views=7)
    first = _text(signed_in.get("/history"))
    words = _words(first)
    assert "Support actions on your account, page 1 of 3" in words
    assert "Looked at your account" not in first  # no row per view
    assert "Support looked at your account's export status 7 times, last on Tue 1 Dec 2026, 10:13 CET" in words
    assert "action 59" in first and "action 35" in first and "action 34" not in first  # newest 25
    assert 'href="/history?actions=2#support-actions" rel="next">Older actions →' in first
    reasons = set()
    for page in (1, 2, 3):
        reasons |= set(re.findall(r"action \d+", _text(signed_in.get(f"/history?actions={page}"))))
    assert reasons == {f"action {n}" for n in range(60)}  # every action, none lost past the first page
    last = _text(signed_in.get("/history?actions=3"))
    assert (
        'href="/history?actions=2#support-actions" rel="prev">← Newer actions' in last and "Older actions" not in last
    )


def test_the_two_pagers_on_history_keep_each_others_page(db: Database, signed_in: FlaskClient, alice_user: int) -> None:
    _support_rows(db, alice_user, actions=30, views=0)
    page = signed_in.get("/history?actions=2").get_data(as_text=True)
    assert "Support looked at" not in page  # no views, no line
    assert 'href="/history?actions=1#support-actions" rel="prev"' in page


def test_only_views_show_the_summary_and_say_support_did_not_act(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    _support_rows(db, alice_user, actions=0, views=1)
    page = _text(signed_in.get("/history"))
    assert "Support looked at your account's export status once, last on" in _words(page)
    assert "Support has not acted on your account" in page


def test_the_api_pages_the_actions_and_counts_the_views(db: Database, signed_in: FlaskClient, alice_user: int) -> None:
    _support_rows(db, alice_user, actions=30, views=7)
    headers = {"X-CSRFToken": csrf_token(signed_in, "/history")}
    body = signed_in.get("/api/v1/history/support?limit=20", headers=headers).get_json()
    assert body["total"] == 30 and body["next_cursor"] == "20" and len(body["items"]) == 20
    assert {i["action"] for i in body["items"]} == {"schedule.pause"}
    assert body["views"] == {"count": 7, "last_at": "2026-12-01T09:13:00+00:00"}
    rest = signed_in.get("/api/v1/history/support?limit=20&cursor=20", headers=headers).get_json()
    assert rest["next_cursor"] is None and len(rest["items"]) == 10
    assert {i["reason"] for i in body["items"] + rest["items"]} == {f"action {n}" for n in range(30)}
    bad = signed_in.get("/api/v1/history/support?cursor=soon", headers=headers)
    assert bad.status_code == 422


def test_a_refused_action_reads_as_tried_not_as_done(db: Database, signed_in: FlaskClient, alice_user: int) -> None:
    """A refused pause (no schedule to pause) showed as "Paused your export schedule … Refused" (trial 14)."""
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        record(session, STAFF, "schedule.pause", now=START, target=user, reason="ticket 5", outcome="refused")
        record(session, STAFF, "schedule.resume", now=START + dt.timedelta(minutes=1), target=user, reason="ticket 6")
    page = _words(signed_in.get("/history").get_data(as_text=True))
    assert "Tried to pause your export schedule; it was not changed ticket 5 Refused" in page
    assert "Paused your export schedule" not in page
    assert "Resumed your export schedule ticket 6 Done" in page
