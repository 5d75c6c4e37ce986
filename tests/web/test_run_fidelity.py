"""A run's page and GET /api/v1/runs/<id> say what its archive read back and what the export changed (issue 16)."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from account.records import Account
from jobs import get_context
from jobs.export import export_and_record
from store import Database, ExportFidelity, RunEvent, RunState
from store.base import utcnow
from tests.api.conftest import make_token
from tests.web.run_helpers import ReceiptDelivery, run_now, use_bucket


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def test_the_run_page_says_every_item_was_read_back_and_lists_the_changes(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, alice: Account
) -> None:
    use_bucket(app, db, alice_user, ReceiptDelivery())
    run_id, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    page = _text(signed_in.get(f"/runs/{run_id}"))
    items = len(alice.contacts) + len(alice.calendars) + sum(len(c.events) for c in alice.calendars) + len(alice.notes)
    assert f"Read back {items} items: 0 differences." in page
    assert "matches what was exported, field by field" in page
    assert "3 changes." in page and "notes/Home/Shopping list (2).md" in page
    assert "numbered: same name as another note" in page  # two notes "Shopping list"
    assert f"Read back {items} items: 0 differences; 3 changes listed in manifest.json." in page  # the history line
    with db.session() as session:
        (row,) = session.query(ExportFidelity).all()
        assert (row.run_id, row.items, row.differences, row.changes) == (run_id, items, 0, 3)


def test_differences_are_shown_in_words_on_the_page_and_in_the_api_and_only_counted_in_the_log(
    app: Flask,
    db: Database,
    signed_in: FlaskClient,
    alice_user: int,
    alice: Account,
    email_dropped: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    with caplog.at_level(logging.WARNING):
        run_id, _ = run_now(app, db, alice_user)
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "items: 1 difference." in page and "Support has been told which kinds of data and fields differ" in page
    line = f"contact c-0001: emails[0].value: expected {bob.emails[0].value!r}, found {bob.emails[1].value!r}"
    assert line.replace("'", "&#39;") in page
    token = make_token(db, alice_user)
    run = signed_in.application.test_client().get(
        f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}
    )
    fidelity = run.get_json()["fidelity"]
    assert fidelity["differences"] == 1 and fidelity["difference_lines"][0] == line
    assert len(fidelity["difference_details"]) == len(fidelity["difference_lines"])
    assert fidelity["difference_details"][0] == (
        {
            "kind": "contact",
            "item": "c-0001",
            "field": "emails[0].value",
            "expected": repr(bob.emails[0].value),
            "found": repr(bob.emails[1].value),
        }
    )
    assert fidelity["changes"] == 3 and fidelity["changes_summary"] == "3 changes"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "fidelity drill found differences" in logged
    # The history says it as a warning, not as routine (a user trial found a green, routine-looking run).
    with db.session() as session:
        (exported,) = session.query(RunEvent).filter_by(run_id=run_id, kind="exported").all()
        assert exported.level == "warning" and "1 difference" in exported.message
    assert bob.emails[0].value not in logged and bob.emails[1].value not in logged and "c-0001" not in logged


def test_a_run_that_made_no_archive_has_no_fidelity_and_the_openapi_describes_it(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    from jobs import run_lifecycle
    from store.base import utcnow

    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
        run_id = run.id
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "Once the archive is written, it is read back and compared with your data here." in page
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    assert client.get(f"/api/v1/runs/{run_id}", headers=headers).get_json()["fidelity"] is None
    schemas = client.get("/api/v1/openapi.json", headers=headers).get_json()["components"]["schemas"]
    assert "fidelity" in schemas["RunDetail"]["required"]
    described = set(schemas["Fidelity"]["properties"])
    assert {"items", "differences", "summary", "difference_lines", "changes", "changes_summary", "change_lines"} <= (
        described
    )


def test_the_export_command_prints_the_read_back_and_what_earlier_drills_proved_and_stores_it_with_the_archive(
    app: Flask, db: Database, alice: Account
) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    result = runner.invoke(args=["export", alice.email])
    assert result.exit_code == 0, result.output
    assert "Read back 12 items: 0 differences; 3 changes listed in manifest.json." in result.output
    with db.session() as session:
        (row,) = session.query(ExportFidelity).all()
        # The export is a run (History lists it, with this read-back) that sent nothing.
        assert row.run_id is not None and row.archive_id is not None and (row.items, row.differences) == (12, 0)
    again = runner.invoke(args=["export", alice.email])
    assert again.exit_code == 0, again.output
    with db.session() as session:
        first, repeat = session.query(ExportFidelity).order_by(ExportFidelity.id).all()
        assert first.skipped == 0 and repeat.skipped
        proven = f"Read back 12 items: 0 differences ({repeat.skipped} proven by earlier drills); 3 changes"
    assert proven in again.output


def test_the_export_command_names_item_and_field_of_a_difference_but_not_the_values(
    app: Flask, alice: Account, email_dropped: None
) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    result = runner.invoke(args=["export", alice.email])
    assert result.exit_code == 1, result.output  # kept, but a script must notice
    assert "items: 1 difference;" in result.output and "Differs: contact c-0001 emails[0].value" in result.output
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    assert bob.emails[0].value not in result.output
    assert 'manifest.json, "changes")\n  Differs: ' in result.output  # each on a line of its own


def test_export_and_deliver_says_what_the_read_back_found_and_exits_1_on_a_difference_as_export_does(
    app: Flask, alice: Account, email_dropped: None
) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    result = runner.invoke(args=["export", alice.email, "--deliver"])
    assert result.exit_code == 1, result.output  # a cron script using --deliver must notice too
    assert "Read back 12 items: 1 difference; 3 changes listed in manifest.json." in result.output
    assert "Differs: contact c-0001 emails[0].value" in result.output and "finished" in result.output
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    assert bob.emails[0].value not in result.output


def test_an_archives_page_says_what_its_read_back_found_with_the_differences_when_no_run_made_it(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, alice: Account, email_dropped: None
) -> None:
    # An archive made outside any run (`lifeboat export` before its exports were runs): its page is the only place.
    exported = export_and_record(db, alice_user, get_context(app).files, now=utcnow(), default_vcard_version="3.0")
    assert exported.drill is not None and exported.drill.differences == 1
    archive_id = exported.archive.id
    page = _text(signed_in.get(f"/archives/{archive_id}"))
    assert "Read back 12 items: 1 difference. Made by <code>lifeboat export</code>; the first differences:" in page
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    assert f"contact c-0001: emails[0].value: expected &#39;{bob.emails[0].value}&#39;" in page  # the owner's view
    use_bucket(app, db, alice_user, ReceiptDelivery())
    run_id, _ = run_now(app, db, alice_user)
    with db.session() as session:
        made = session.query(ExportFidelity).filter_by(run_id=run_id).one().archive_id
    page = _text(signed_in.get(f"/archives/{made}"))
    assert "Read back 12 items: 1 difference" in page and f"/runs/{run_id}#fidelity-title" in page


def _api_fidelity(app: Flask, db: Database, user_id: int, run_id: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {make_token(db, user_id)}"}
    answer = app.test_client().get(f"/api/v1/runs/{run_id}", headers=headers)
    assert answer.status_code == 200
    fidelity = answer.get_json()["fidelity"]
    assert isinstance(fidelity, dict)
    return fidelity


def test_a_repeat_exports_page_and_api_say_how_many_items_earlier_drills_proved(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    use_bucket(app, db, alice_user, ReceiptDelivery())
    first, _ = run_now(app, db, alice_user)
    again, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    before = _api_fidelity(app, db, alice_user, first)
    assert (before["method"], before["skipped"], before["read_again"]) == ("memo", 0, before["items"])
    assert (
        before["reading"] == f"{before['items']} items compared, every one read again (none proven by earlier drills)"
    )
    repeat = _api_fidelity(app, db, alice_user, again)
    items, skipped = repeat["items"], repeat["skipped"]
    assert isinstance(items, int) and isinstance(skipped, int) and 0 < skipped <= items
    assert repeat["method"] == "memo" and repeat["read_again"] == items - skipped
    page = _text(signed_in.get(f"/runs/{again}"))
    if skipped < items:
        assert f"{items} items compared, {skipped} proven by earlier drills ({items - skipped} read again)." in page
    else:
        assert f"{items} items compared, every one proven by earlier drills" in page
    assert "An item is proven when an earlier export's check read exactly these bytes back" in page
    assert str(repeat["reading"]) in page


def test_a_drill_stored_before_the_reading_was_kept_says_nothing_of_it_and_keeps_its_lines(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    """A row written by the build before migration 0017: no `skipped`, no `described`, lines only."""
    import json

    from jobs import run_lifecycle
    from store.base import utcnow

    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
        run.state = RunState.DELIVERED
        line = "contact c-9: note: expected 'x', found absent"
        detail = json.dumps({"differences": [line], "changes": []})
        session.add(ExportFidelity(run_id=run.id, items=12_000, differences=1, changes=0, detail=detail, method="full"))
        run_id = run.id
    fidelity = _api_fidelity(app, db, alice_user, run_id)
    assert (fidelity["skipped"], fidelity["read_again"], fidelity["reading"]) == (None, None, "")
    assert fidelity["difference_lines"] == [line] and fidelity["difference_details"] == []
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "Read back 12,000 items: 1 difference." in page and "compared," not in page


def test_the_reading_says_every_item_was_read_again_in_a_full_drill_and_what_was_proven_in_a_memo_one() -> None:
    from web.run_detail import reading_words

    assert reading_words(12_000, "full", 0) == "12,000 items compared, every one read again from the archive"
    assert (
        reading_words(12_000, "memo", 11_900)
        == "12,000 items compared, 11,900 proven by earlier drills (100 read again)"
    )
    assert reading_words(0, "memo", 0) == ""
