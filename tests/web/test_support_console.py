"""The support console: the queue of what needs attention, find, a user's page (metadata only), the audit log."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from account.records import Account
from jobs import get_context
from jobs.audit import Actor, record
from store import AuditEvent, Database, ExportFidelity, ExportRun, RunState, User
from tests.api.conftest import bearer, make_token
from tests.web.conftest import make_staff
from tests.web.run_helpers import ETAG, KEY, VERSION, ReceiptDelivery, run_now, use_bucket
from tests.web.support_seed import ALICE_CONTENT, DENIED, KEY_ID, SECRET, Seeded, seed


@pytest.fixture
def seeded(app: Flask, db: Database, alice_user: int) -> Seeded:
    return seed(app, db, alice_user)


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def test_the_queue_lists_each_kind_of_trouble_newest_first_and_nobody_who_is_fine(
    seeded: Seeded, support_client: FlaskClient
) -> None:
    page = _text(support_client.get("/support"))
    for kind, email in seeded.by_kind.items():
        assert re.search(rf'class="queue-item {kind}".*?{re.escape(email)}', page), kind
    assert "frank@fine.example" not in page
    order = [page.index(f'class="queue-item {k}"') for k in seeded.by_kind]
    assert order == sorted(order)  # seeded newest first in that order
    assert DENIED in page and "The bucket bob-bucket does not exist." in page
    assert "Lifeboat will try again in 5 minutes" in page and "Export running: calendars" in page
    assert "No delivered export on a daily schedule" in page
    assert "7 items" in page  # alice is in twice: her last delivery failed and her keyed bucket is in error


def test_the_queue_filtered_by_kind_shows_only_that_kind(seeded: Seeded, support_client: FlaskClient) -> None:
    for kind, email in seeded.by_kind.items():
        page = _text(support_client.get(f"/support?kind={kind}"))
        assert email in page, kind
        assert set(re.findall(r'class="queue-item (\w+)"', page)) == {kind}
        assert f'<option value="{kind}" selected>' in page


@pytest.mark.parametrize("page", ["99999999999999999999", "-3", "abc", "0"])
def test_a_queue_page_number_out_of_range_or_not_a_number_shows_a_page_not_an_error(
    support_client: FlaskClient, page: str
) -> None:
    answer = support_client.get(f"/support?page={page}", follow_redirects=True)  # past the end: to the last page
    assert answer.status_code == 200  # a page number beyond 64 bits overflowed the database driver: a 500
    assert "Needs attention" in answer.get_data(as_text=True)


def test_find_a_user_by_email_prefix_in_any_case_user_id_run_id_or_checksum(
    seeded: Seeded, support_client: FlaskClient
) -> None:
    for q in ("ALICE@EX", "alice", str(seeded.alice), seeded.failed_run, seeded.sha256, seeded.sha256[:8].upper()):
        page = _text(support_client.get("/support/find", query_string={"q": q}))
        assert f'href="/support/users/{seeded.alice}">alice@example.com</a>' in page, q
        assert "1 user found" in page and "bob@queue.example" not in page, q


def test_find_needs_eight_digits_of_a_checksum_and_says_so_when_nothing_matches(
    seeded: Seeded, support_client: FlaskClient
) -> None:
    page = _text(support_client.get("/support/find", query_string={"q": seeded.sha256[:7]}))
    assert "0 users found" in page and "No user matches" in page and "at least 8 characters" in page
    wildcard = _text(support_client.get("/support/find?q=%25"))  # a % is a character, not "any"
    assert "0 users found" in wildcard and "@queue.example" not in wildcard


def test_the_user_page_shows_receipts_timings_masked_keys_and_archive_checksums_but_no_content(
    app: Flask, db: Database, seeded: Seeded, support_client: FlaskClient
) -> None:
    response = support_client.get(f"/support/users/{seeded.alice}")
    assert response.status_code == 200
    page = _text(response)
    for receipt in (KEY, VERSION, ETAG):
        assert receipt in page
    assert DENIED in page and seeded.failed_run in page and seeded.delivered_run in page
    assert "access key AKIA…WXYZ (secret key stored encrypted)" in page
    assert SECRET not in page and KEY_ID not in page
    assert seeded.sha256 in page and "3 contacts" in page
    assert "Checking the archive" in page and "Delivering" in page  # stage timings
    assert "Daily: every day at 02:00" in page and "Next run" in page
    for content in ALICE_CONTENT:
        assert content not in page, content
    console = page[page.index('<main id="main">') :]  # the site's own nav links to the staff member's pages
    assert "/download" not in console and "/d/" not in console and 'href="/archives' not in console


def test_viewing_a_user_page_is_audited_as_view_user(db: Database, seeded: Seeded, support_client: FlaskClient) -> None:
    support_client.get(f"/support/users/{seeded.alice}")
    with db.session() as session:
        (row,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "view_user"))
    assert (row.target_user_id, row.actor_email, row.actor_role) == (seeded.alice, "sam@support.example.com", "support")


def test_the_user_page_of_nobody_or_of_a_staff_member_is_404(db: Database, support_client: FlaskClient) -> None:
    assert support_client.get("/support/users/999999").status_code == 404
    assert support_client.get("/support/users/2147483648").status_code == 404  # past PostgreSQL's integer ids
    with db.session() as session:
        sam = session.scalar(select(User.id).where(User.email == "sam@support.example.com"))
    assert support_client.get(f"/support/users/{sam}").status_code == 404
    found = _text(support_client.get("/support/find", query_string={"q": "sam@"}))  # nor does find lead there
    assert "0 users found" in found


def test_hostile_search_and_filters_are_answered_not_crashed_on(
    seeded: Seeded, support_client: FlaskClient, admin_client: FlaskClient
) -> None:
    assert support_client.get("/support/find?q=a%00b").status_code == 200  # NUL: U+FFFD, matches nobody
    assert "0 users found" in _text(support_client.get("/support/find?q=2147483648"))
    for query in ("until=9999-12-31", "since=0001-01-01", "target=2147483648", "actor=%00", "target=a%00"):
        assert admin_client.get(f"/support/audit?{query}").status_code == 200, query
        assert admin_client.get(f"/support/audit.csv?{query}").status_code == 200, query


def test_a_regular_user_gets_403_and_a_visitor_is_sent_to_sign_in(app: Flask, signed_in: FlaskClient) -> None:
    for path in ("/support", "/support/find?q=a", "/support/users/1", "/support/audit", "/support/audit.csv"):
        assert signed_in.get(path).status_code == 403, path
        response = app.test_client().get(path)
        assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login", path


def test_the_audit_log_is_for_admins_only(support_client: FlaskClient, admin_client: FlaskClient) -> None:
    for path in ("/support/audit", "/support/audit.csv", "/support/audit.json"):
        assert support_client.get(path).status_code == 403, path
        assert admin_client.get(path).status_code == 200, path
    assert 'href="/support/audit"' in admin_client.get("/support").get_data(as_text=True)
    assert 'href="/support/audit"' not in support_client.get("/support").get_data(as_text=True)


def _audit_rows(db: Database, alice: int) -> None:
    """Three rows: two by support on alice on 2026-12-01 and 12-03, one admin sign-in on 12-05."""
    with db.session(write=True) as session:
        sam = session.scalar(select(User).where(User.email == "sam@support.example.com"))
        ada = session.scalar(select(User).where(User.email == "ada@admin.example.com"))
        target = session.get(User, alice)
        assert sam is not None and ada is not None and target is not None
        support = Actor.of(sam, "192.0.2.7")
        at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
        record(session, support, "resend_archive", now=at, target=target, reason="=HYPERLINK(1) user called")
        later = dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)
        record(session, support, "pause_schedule", now=later, target=target, reason="On holiday", detail={"n": 1})
        record(session, Actor.of(ada, "192.0.2.9"), "sign_in", now=dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC))


def test_the_audit_log_filters_by_actor_target_action_and_days(
    db: Database, alice_user: int, support_client: FlaskClient, admin_client: FlaskClient
) -> None:
    _audit_rows(db, alice_user)
    everything = _text(admin_client.get("/support/audit"))
    assert "3 rows" in everything and "192.0.2.7" in everything
    shown = re.findall(r'data-label="Action">(\w+)<', everything)
    assert shown == ["sign_in", "pause_schedule", "resend_archive"]  # newest first
    for query, expected in (
        ("actor=ada", {"sign_in"}),
        ("actor=SAM@support", {"resend_archive", "pause_schedule"}),
        (f"target={alice_user}", {"resend_archive", "pause_schedule"}),
        ("target=alice@", {"resend_archive", "pause_schedule"}),
        ("action=pause_schedule", {"pause_schedule"}),
        ("since=2026-12-02&until=2026-12-03", {"pause_schedule"}),
        ("until=2026-12-01", {"resend_archive"}),
    ):
        page = _text(admin_client.get(f"/support/audit?{query}"))
        found = set(re.findall(r'data-label="Action">(\w+)<', page))
        assert found == expected, query
    bad = _text(admin_client.get("/support/audit?since=yesterday"))
    assert "“yesterday” is not a date: write it as YYYY-MM-DD" in bad and "3 rows" in bad


def test_the_audit_log_exports_the_filtered_rows_as_csv_and_json(
    db: Database, alice_user: int, support_client: FlaskClient, admin_client: FlaskClient
) -> None:
    _audit_rows(db, alice_user)
    response = admin_client.get(f"/support/audit.csv?target={alice_user}")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["pause_schedule", "resend_archive"]
    assert rows[1]["reason"] == "'=HYPERLINK(1) user called"  # a formula is kept as text
    assert rows[0]["address"] == "192.0.2.7" and json.loads(rows[0]["detail"]) == {"n": 1}
    assert rows[0]["at"] == "2026-12-03T09:00:00+00:00"
    exported = json.loads(admin_client.get("/support/audit.json?action=sign_in").get_data(as_text=True))
    assert [(e["action"], e["actor_email"], e["actor_role"]) for e in exported] == [
        ("sign_in", "ada@admin.example.com", "admin")
    ]
    assert json.loads(admin_client.get("/support/audit.json?actor=nobody").get_data(as_text=True)) == []
    assert admin_client.get("/support/audit.csv?since=never").status_code == 400


def test_the_user_sees_support_actions_on_their_history_without_the_staff_members_address(
    db: Database, alice_user: int, support_client: FlaskClient, admin_client: FlaskClient, signed_in: FlaskClient
) -> None:
    _audit_rows(db, alice_user)
    page = _text(signed_in.get("/history"))
    assert "Support actions on your account" in page
    assert "Re-sent an existing archive to your destinations" in page and "Paused your export schedule" in page
    assert "On holiday" in page and "Done" in page
    assert "sam@support.example.com" not in page and "192.0.2.7" not in page
    assert "sign_in" not in page  # the admin's sign-in targets nobody
    answer = signed_in.get("/api/v1/history/support", headers={"X-CSRFToken": _api_csrf(signed_in)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    items = answer.get_json()["items"]
    assert [i["action"] for i in items] == ["pause_schedule", "resend_archive"]
    assert items[0]["reason"] == "On holiday" and "sam@" not in json.dumps(items)


def test_every_action_support_can_take_has_words_for_the_users_history() -> None:
    """The actions module and the history's wording were written apart: an action without words showed
    its code ("Archive.resend") to the user."""
    import inspect

    from jobs import support_actions
    from jobs.audit_search import ACTION_WORDS, OUTCOME_WORDS

    source = inspect.getsource(support_actions)
    actions = set(re.findall(r'^\s+"([a-z]+\.[a-z.]+)",$', source, re.MULTILINE))
    assert actions >= {"archive.resend", "destination.retest", "credentials.revoke"}
    assert sorted(actions - ACTION_WORDS.keys()) == []
    outcomes = set(re.findall(r'outcome="([a-z_]+)"', source)) | {"ok", "failed"}
    assert sorted(outcomes - OUTCOME_WORDS.keys()) == []


def test_history_has_no_support_section_when_support_never_acted(signed_in: FlaskClient) -> None:
    assert "Support actions on your account" not in signed_in.get("/history").get_data(as_text=True)


def _api_csrf(client: FlaskClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))
    assert found
    return found.group(1)


def test_the_user_page_offers_each_action_on_the_users_own_archives_and_destinations(
    seeded: Seeded, support_client: FlaskClient
) -> None:
    page = _text(support_client.get(f"/support/users/{seeded.alice}"))
    for action in ("resend", "export", "pause", "revoke-credentials"):
        assert f'action="/support/users/{seeded.alice}/{action}"' in page, action
    assert f'action="/support/users/{seeded.alice}/destinations/' in page  # clear the error and test again
    assert 'name="archive_id"' in page and "No destinations." not in page


def test_a_drill_that_found_differences_is_queued_with_counts_and_field_names_and_never_the_values(
    app: Flask,
    db: Database,
    alice_user: int,
    alice: Account,
    email_dropped: None,
    monkeypatch: pytest.MonkeyPatch,
    support_client: FlaskClient,
) -> None:
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    use_bucket(app, db, alice_user, ReceiptDelivery())
    run_id, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED  # the archive is kept and delivered: the best copy there is
    page = _text(support_client.get("/support?kind=drill_differences"))
    assert re.search(r'class="queue-item drill_differences".*?alice@example\.com', page)
    assert f"The fidelity drill found 1 difference in run {run_id} (12 items read back)." in page
    assert "Fields: contact emails[0].value; contact emails[0].types[0]; contact emails[0].preferred;" in page
    assert "report the run id and these field names to the developers" in page
    assert "start a new export from the user&#39;s page to check again" in page
    user_page = _text(support_client.get(f"/support/users/{alice_user}"))
    fields = (
        "Fields: contact emails[0].value; contact emails[0].types[0]; contact emails[0].preferred; contact emails[1]."
    )
    assert f'<dt>Read back</dt><dd class="error-text">Read back 12 items: 1 difference. {fields}</dd>' in user_page
    token = make_token(db, make_staff(db, "script@support.example.com", "support"))
    staff_view = app.test_client().get(f"/api/v1/support/users/{alice_user}", headers=bearer(token)).get_json()
    assert staff_view["runs"][0]["readback"] == f"Read back 12 items: 1 difference. {fields}"
    answer = app.test_client().get("/api/v1/support/queue?kind=drill_differences", headers=bearer(token)).get_json()
    (item,) = answer["items"]
    assert (item["kind"], item["run_id"], item["kind_label"]) == (
        "drill_differences",
        run_id,
        "Archive read back with differences",
    )
    assert item["message"].startswith(f"The fidelity drill found 1 difference in run {run_id}")
    for value in (*ALICE_CONTENT, bob.emails[0].value, bob.emails[1].value, "c-0001", "'home'", "'work'"):
        assert value not in page and value not in user_page and value not in item["message"], value
    # The writer mended (and the cards it cached dropped): the next export reads back equal and clears the item.
    monkeypatch.undo()
    shutil.rmtree(get_context(app).export_cache_dir)
    clean, _ = run_now(app, db, alice_user)
    with db.session() as session:
        assert session.scalar(select(ExportFidelity.differences).where(ExportFidelity.run_id == clean)) == 0
    assert 'class="queue-item drill_differences"' not in _text(support_client.get("/support"))


def test_a_drill_with_many_differences_is_counted_with_thousands_separators_and_only_the_newest_counts(
    db: Database, alice_user: int, support_client: FlaskClient
) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.session(write=True) as session:
        for hours, differences in ((2, 3), (1, 1_234)):
            run = ExportRun(user_id=alice_user, trigger="schedule", state="delivered")
            session.add(run)
            session.flush()
            at = now - dt.timedelta(hours=hours)
            session.add(
                ExportFidelity(
                    run_id=run.id, items=65_002, differences=differences, changes=0, detail="{}", checked_at=at
                )
            )
    page = _text(support_client.get("/support?kind=drill_differences"))
    assert page.count('class="queue-item drill_differences"') == 1
    assert "found 1,234 differences in run" in page and "(65,002 items read back)." in page
    assert "Fields:" not in page  # none kept (a row from before they were): counts only


def test_support_says_kept_here_for_a_run_that_delivered_nowhere_as_its_user_reads_it(
    app: Flask, db: Database, alice_user: int, support_client: FlaskClient, signed_in: FlaskClient
) -> None:
    kept, outcome = run_now(app, db, alice_user)  # no destination yet: the archive stays here
    assert outcome == RunState.DELIVERED
    use_bucket(app, db, alice_user, ReceiptDelivery())
    delivered, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    page = _text(support_client.get(f"/support/users/{alice_user}"))
    badges = dict(re.findall(r'id="run-(\w+)"> <h3><span class="badge delivered">([^<]+)</span>', page))
    assert badges == {kept: "Kept here", delivered: "Delivered"}
    for run_id, words in badges.items():  # the user's own run page, word for word
        assert f'<span class="badge delivered">{words}</span>' in _text(signed_in.get(f"/runs/{run_id}"))
    token = make_token(db, make_staff(db, "script@support.example.com", "support"))
    staff_view = app.test_client().get(f"/api/v1/support/users/{alice_user}", headers=bearer(token)).get_json()
    # The API's state is the machine value, as in the user's own API; the attempts say where it went.
    runs = {run["id"]: run for run in staff_view["runs"]}
    assert (runs[kept]["state"], runs[kept]["attempts"]) == ("delivered", [])
    assert runs[delivered]["state"] == "delivered" and runs[delivered]["attempts"]
