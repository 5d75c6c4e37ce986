"""Support console pages say what is true: no empty state under a count, no schedule actions without a schedule,
a re-send defaulting to where it can go, no "Last 0 exports"."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs.audit import Actor, record
from store import Archive, Database, Schedule, User
from store.base import utcnow
from tests.web.support_seed import seed

STAFF = Actor(user_id=99, email="sam@support.example.com", role="support", address="192.0.2.7")


def _where(response: object) -> tuple[str, dict[str, list[str]]]:
    location = urlsplit(response.headers["Location"])  # type: ignore[attr-defined]
    return location.path, parse_qs(location.query)


def _forms(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', page)


def test_a_queue_page_past_the_last_goes_to_the_last_keeping_the_filter(
    app: Flask, db: Database, alice_user: int, support_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(app, db, alice_user)  # six users in trouble
    monkeypatch.setattr("web.support_console.PER_PAGE", 4)
    past = support_client.get("/support?page=5")
    assert past.status_code == 302 and _where(past) == ("/support", {"page": ["2"]})
    last = support_client.get("/support?page=2").get_data(as_text=True)
    assert "Nothing needs attention" not in last and 'class="queue-item' in last
    one_kind = support_client.get("/support?kind=retrying&page=3")
    assert one_kind.status_code == 302 and _where(one_kind) == ("/support", {"kind": ["retrying"]})


def test_an_empty_queue_past_page_one_goes_to_page_one(support_client: FlaskClient) -> None:
    past = support_client.get("/support?page=2")
    assert past.status_code == 302 and _where(past) == ("/support", {})
    assert "Nothing needs attention" in support_client.get("/support").get_data(as_text=True)


def test_an_audit_page_past_the_last_goes_to_the_last_keeping_the_filters(
    db: Database, alice_user: int, admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.session(write=True) as session:
        alice = session.get(User, alice_user)
        for n in range(5):
            record(session, STAFF, "schedule.pause", now=utcnow() + dt.timedelta(minutes=n), target=alice, reason="r")
    monkeypatch.setattr("web.support_console.PER_PAGE", 2)
    past = admin_client.get(f"/support/audit?target={alice_user}&page=9")
    assert past.status_code == 302
    assert _where(past) == ("/support/audit", {"target": [str(alice_user)], "page": ["3"]})
    last = admin_client.get(f"/support/audit?target={alice_user}&page=3").get_data(as_text=True)
    assert "No audit rows match" not in last and 'rel="prev"' in last and 'rel="next"' not in last
    none = admin_client.get("/support/audit?action=credentials.revoke&page=2")  # an action, none recorded yet
    assert none.status_code == 302 and _where(none) == ("/support/audit", {"action": ["credentials.revoke"]})


def test_the_queue_and_audit_pagers_are_the_one_macro(
    app: Flask, db: Database, alice_user: int, admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(app, db, alice_user)
    monkeypatch.setattr("web.support_console.PER_PAGE", 2)
    queue = admin_client.get("/support?kind=delivery_failed&page=1").get_data(as_text=True)
    assert '<nav class="pager" aria-label="Pages of the queue">' not in queue  # one item: no pager
    queue = admin_client.get("/support").get_data(as_text=True)
    assert '<nav class="pager" aria-label="Pages of the queue">' in queue
    assert '<a href="/support?page=2" rel="next">Older →</a>' in queue
    for path in ("templates/support/queue.html", "templates/support/audit.html"):
        with open(path, encoding="utf-8") as template:
            source = template.read()
        assert '<nav class="pager"' not in source and "import pager" in source


def test_a_user_without_schedule_exports_or_destinations_gets_only_what_applies(
    db: Database, alice_user: int, support_client: FlaskClient
) -> None:
    with db.session(write=True) as session:
        session.add(
            Archive(
                user_id=alice_user,
                filename="a.zip",
                relpath="a.zip",
                sha256="0" * 64,
                size=1,
                verified_at=utcnow(),
            )
        )
    page = support_client.get(f"/support/users/{alice_user}").get_data(as_text=True)
    assert "No schedule set" in page
    assert not any(action.endswith(("/pause", "/resume")) for action in _forms(page))
    assert re.search(
        r'<input type="radio" name="to" value="destinations" disabled> their destinations \(none set\)', page
    )
    assert re.search(r'<input type="radio" name="to" value="email" checked> their own email address', page)
    assert '<h2 id="runs-title">No exports yet</h2>' in page and "Last 0 exports" not in page


@pytest.mark.parametrize(("enabled", "offered", "hidden"), [(True, "/pause", "/resume"), (False, "/resume", "/pause")])
def test_a_schedule_is_offered_pause_or_resume_as_it_stands(
    db: Database, alice_user: int, support_client: FlaskClient, enabled: bool, offered: str, hidden: str
) -> None:
    with db.session(write=True) as session:
        session.add(Schedule(user_id=alice_user, frequency="daily", enabled=enabled, next_run_at=utcnow()))
    forms = _forms(support_client.get(f"/support/users/{alice_user}").get_data(as_text=True))
    assert any(a.endswith(offered) for a in forms) and not any(a.endswith(hidden) for a in forms)


def test_an_unknown_queue_kind_says_everything_is_shown_and_names_the_kind_it_likely_meant(
    app: Flask, db: Database, alice_user: int, support_client: FlaskClient
) -> None:
    seed(app, db, alice_user)
    everything = _text(support_client.get("/support"))
    page = _text(support_client.get("/support?kind=missed"))
    assert (
        "“missed” is not a kind of item, so everything is shown. "
        "Did you mean Missed scheduled exports (kind=missed_run)?" in page
    )
    assert page.count('class="queue-item') == everything.count('class="queue-item') > 1
    vague = _text(support_client.get("/support?kind=zzz"))
    assert "“zzz” is not a kind of item, so everything is shown: choose one under “Show”." in vague
    assert 'id="queue-kind-unknown"' not in _text(support_client.get("/support?kind=missed_run"))


def test_an_unknown_audit_action_or_a_range_that_ends_before_it_starts_is_said_not_answered_with_no_rows(
    db: Database, alice_user: int, admin_client: FlaskClient
) -> None:
    with db.session(write=True) as session:
        alice = session.get(User, alice_user)
        record(session, STAFF, "schedule.pause", now=utcnow(), target=alice, reason="r")
    bogus = _text(admin_client.get("/support/audit?action=bogus"))
    assert "“bogus” is no action Lifeboat records: pick one from the list." in bogus
    assert "The filters were left out: every row is shown." in bogus and "No audit rows match" not in bogus
    backwards = _text(admin_client.get("/support/audit?since=2026-12-08&until=2026-12-01"))
    assert "The range ends (2026-12-01) before it starts (2026-12-08): swap the two days." in backwards
    assert admin_client.get("/support/audit.csv?since=2026-12-08&until=2026-12-01").status_code == 400
    # An action Lifeboat records but nobody did yet is a fair question: no rows, no complaint.
    never = _text(admin_client.get("/support/audit?action=credentials.revoke"))
    assert "No audit rows match these filters." in never and 'id="audit-filter-problem"' not in never
    same_day = _text(admin_client.get("/support/audit?since=2026-12-01&until=2026-12-01"))
    assert 'id="audit-filter-problem"' not in same_day


def _text(response: object) -> str:
    assert response.status_code == 200  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]
