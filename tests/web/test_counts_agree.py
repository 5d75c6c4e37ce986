"""Every place that shows how much an account holds shows the same figures (issue 11, defect 6).

Why: `verify` once said 1094 events where the dashboard said 1004 for the demo
account: it counted VEVENT components, and a repeating event's moved or
changed occurrences are extra VEVENTs. The figures are now what the user
entered (`exporters.archive.counts`): the manifest, `export`, `verify`, `restore`, the
run's history and the dashboard must all say so.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from account.records import Account
from account.sample import demo_account
from exporters.archive.counts import account_counts, counts_line
from jobs import get_context, run_lifecycle
from jobs.execute import execute_run
from store import Database, ExportRun, RunEvent
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from web.formatting import plural, thousands

ALICE = {"contacts": 3, "calendars": 2, "events": 4, "notes": 3, "attachments": 1}


def _everywhere(app: Flask, runner: FlaskCliRunner, db: Database, account: Account, tmp_path: Path) -> list[str]:
    """What the manifest, export, verify, restore, the run history and the dashboard say, as text."""
    with db.session(write=True) as session:
        user = replace_account(session, account)
        user.password_hash = hash_password("correct horse")
        user_id = user.id
    said = []
    export = runner.invoke(args=["export", account.email, "--out", str(tmp_path / "out")])
    assert export.exit_code == 0, export.output
    archive = Path(export.output.splitlines()[0])
    said.append(export.output)
    with zipfile.ZipFile(archive) as zf:
        said.append(counts_line(json.loads(zf.read("manifest.json"))["counts"]))
    verify = runner.invoke(args=["verify", str(archive)])
    assert verify.exit_code == 0, verify.output
    said.append(verify.output)
    restore = runner.invoke(args=["restore", str(archive), "--email", "copy@example.com"])
    assert restore.exit_code == 0, restore.output
    said.append(restore.output)
    # After the CLI's export ended: it is a run too, and a user has one active run at a time.
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
        run_id = run.id
    assert execute_run(get_context(app), run_id, "w") == "delivered"
    with db.session() as session:
        said.append(
            session.scalars(
                select(RunEvent.message).where(RunEvent.run_id == run_id, RunEvent.kind == "exported")
            ).one()
        )
        assert session.get(ExportRun, run_id) is not None
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]  # no match fails the test
    client.post("/login", data={"email": account.email, "password": "correct horse", "csrf_token": token})
    dashboard = client.get("/").get_data(as_text=True)
    said.append(re.sub(r"<[^>]+>", "", dashboard))
    return said


def test_alice_reads_the_same_everywhere(
    app: Flask, runner: FlaskCliRunner, db: Database, alice: Account, tmp_path: Path
) -> None:
    # alice.json: a weekly event with an exception and a moved occurrence (one extra VEVENT).
    assert account_counts(alice) == ALICE
    line = "3 contacts, 4 events in 2 calendars, 3 notes, 1 attachment"
    export, manifest, verify, restore, history, dashboard = _everywhere(app, runner, db, alice, tmp_path)
    for text in (export, manifest, verify, restore, history, dashboard):
        assert line in text, text
    assert "4 events in 2 calendars" in dashboard.split("Exports")[0]  # the overview, not only the archive list
    assert "1 such, 5 VEVENTs in all" in verify


@pytest.mark.slow
def test_the_demo_account_reads_the_same_everywhere(
    app: Flask, runner: FlaskCliRunner, db: Database, tmp_path: Path
) -> None:
    account = demo_account("demo@lifeboat.example")
    figures = account_counts(account)
    line = counts_line(figures)
    said = _everywhere(app, runner, db, account, tmp_path)
    for text in said:
        assert line in text, text
    assert f"{figures['events']:,} events in {figures['calendars']:,} calendars" in said[5].split("Exports")[0]
    moved = sum(len(e.overrides) for c in account.calendars for e in c.events)
    assert moved and f"{moved:,} such, {figures['events'] + moved:,} VEVENTs in all" in said[2]


def test_a_line_for_some_kinds_gives_only_their_figures_in_the_same_words() -> None:
    figures = {"contacts": 3, "calendars": 2, "events": 4, "notes": 1, "attachments": 0}
    whole = counts_line(figures)
    assert whole == "3 contacts, 4 events in 2 calendars, 1 note, 0 attachments"
    assert counts_line(figures, ("notes",)) == "1 note, 0 attachments"  # a restore of notes alone
    assert counts_line(figures, ("calendars", "contacts")) == "3 contacts, 4 events in 2 calendars"  # archive order


def test_a_thousand_events_read_as_1_004_in_the_cli_the_readme_the_history_and_the_pages(
    app: Flask, runner: FlaskCliRunner, db: Database, alice: Account, tmp_path: Path
) -> None:
    # User trial: "1004 events" in `export` and README.txt, "1,004" on the run's page.
    first = alice.calendars[0]
    more = tuple(
        dataclasses.replace(
            first.events[-1], uid=f"more-{i}@example.com", rrule=None, rdates=(), exdates=(), overrides=()
        )
        for i in range(1000)
    )
    account = dataclasses.replace(
        alice, calendars=(dataclasses.replace(first, events=first.events + more), *alice.calendars[1:])
    )
    assert account_counts(account)["events"] == 1004
    line = "3 contacts, 1,004 events in 2 calendars, 3 notes, 1 attachment"
    export, manifest, verify, restore, history, dashboard = _everywhere(app, runner, db, account, tmp_path)
    for text in (export, manifest, verify, restore, history, dashboard):
        assert line in text, text
        assert "1004" not in text, text
    assert re.search(r"[\d,]+ bytes", export) and not re.search(r"\d{4} bytes", export)  # the size too
    archive = Path(export.splitlines()[0])
    with zipfile.ZipFile(archive) as zf:
        readme = zf.read("README.txt").decode()
    assert f"It holds {line}." in readme
    assert "1,004 events" in dashboard.split("Exports")[0]  # the overview's own figures


def test_page_counts_and_plurals_separate_thousands() -> None:
    assert counts_line({"events": 12000, "calendars": 1}, ("calendars",)) == "12,000 events in 1 calendar"
    assert thousands(1004) == "1,004"
    assert plural(12000, "export") == "12,000 exports"


def test_import_account_says_its_figures_as_export_does(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["import-account", "tests/data/alice.json"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "Imported alice@example.com: 3 contacts, 4 events in 2 calendars, 3 notes, 1 attachment."
    )
