"""An archive with kinds left out says "not included", not "0 events in 0 calendars, 0 notes" (user trial 7, item 7).

The overview, the archives list, the archive page and the delete page all read
as if the user's calendars and notes were gone, when they were only left out
by the archive options.
"""

from __future__ import annotations

import html

from flask import Flask
from flask.testing import FlaskClient

from exporters.archive.counts import contents_line
from jobs import get_context, run_lifecycle
from jobs.download_links import archive_kinds
from jobs.execute import execute_run
from store import Archive, Database, ExportRun, User
from store.base import utcnow

LEFT_OUT = "calendars and notes not included"


def _export(app: Flask, db: Database, user_id: int, kinds: str | None) -> Archive:
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        user.export_kinds = kinds
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
        run_id = run.id
    assert execute_run(get_context(app), run_id, "test-worker") == "delivered"
    with db.session() as session:
        run_row = session.get(ExportRun, run_id)
        assert run_row is not None and run_row.archive is not None
        return run_row.archive


def _text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return html.unescape(response.get_data(as_text=True))


def test_contents_line_names_what_was_left_out() -> None:
    counts = {"contacts": 203}
    assert contents_line(counts, ("contacts",)) == f"203 contacts; {LEFT_OUT}"
    two = contents_line(counts, ("contacts", "notes"))
    assert two == "203 contacts, 0 notes, 0 attachments; calendars not included"
    assert contents_line({}, ()) == contents_line({})  # no kinds recorded: every kind, as before


def test_every_page_says_not_included_for_a_contacts_only_archive(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    archive = _export(app, db, alice_user, "contacts")
    assert archive_kinds(get_context(app).files, archive) == ("contacts",)
    line = f"3 contacts; {LEFT_OUT}"
    for path in ("/", "/archives", f"/archives/{archive.id}/delete", "/history"):
        page = _text(signed_in, path)
        assert line in page, path
        assert "0 events in 0 calendars" not in page, path
    detail = _text(signed_in, f"/archives/{archive.id}")
    assert line in detail and "0 events in 0 calendars" not in detail
    assert detail.count("Not included") == 4  # calendars, events, notes, attachments in "What it holds"


def test_an_archive_of_everything_still_shows_its_figures(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    archive = _export(app, db, alice_user, None)
    assert archive_kinds(get_context(app).files, archive) == ("contacts", "calendars", "notes")
    page = _text(signed_in, "/archives")
    assert "3 contacts, 4 events in 2 calendars, 3 notes, 1 attachment" in page and "not included" not in page
