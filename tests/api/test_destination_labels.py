"""Destination labels refuse line breaks, control and text-direction characters, wherever they are given.

The trial: a label `"Friend\\r\\nBcc: evil@x.com"` was stored and shown as two lines
on the destinations page and in the support console. `jobs.destination_setup.check_label`
(`account.canonical.name_problem`) refuses it for the page, the API and the CLI alike;
the API's schema carries the same rule (`ShownName`), so its OpenAPI document says so.
"""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from errors import InvalidInput
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination, edit_destination
from store import Destination, User, get_db
from tests.api.conftest import Call

BAD = ["Friend\r\nBcc: evil@x.com", "\u202eevil", "nul\x00", "tab\there", "para\u2029graph"]


def labels(app: Flask) -> list[str]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Destination.label).order_by(Destination.id)))


@pytest.mark.parametrize("label", BAD)
def test_the_api_refuses_such_a_label_when_adding_in_the_validators_words(
    app: Flask, as_alice: Call, label: str
) -> None:
    refused = as_alice("post", "/api/v1/destinations", json={"kind": "email", "label": label})
    assert refused.status_code == 422, refused.get_json()
    assert "The label must be one line of visible text" in refused.get_data(as_text=True)
    assert labels(app) == []


def test_the_api_refuses_it_when_changing_and_keeps_the_old_label(app: Flask, as_alice: Call) -> None:
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "label": "Friend"})
    assert added.status_code == 201, added.get_json()
    path = f"/api/v1/destinations/{added.get_json()['id']}"
    refused = as_alice("patch", path, json={"label": "Friend\r\nBcc: evil@x.com"})
    assert refused.status_code == 422 and "U+000D" in refused.get_data(as_text=True)
    assert labels(app) == ["Friend"]


def test_an_ordinary_label_in_any_script_is_kept(app: Flask, as_alice: Call) -> None:
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "label": "Zoë's 山田 backup 🚣"})
    assert added.status_code == 201, added.get_json()
    assert labels(app) == ["Zoë's 山田 backup 🚣"]


def test_the_job_refuses_it_whoever_calls_it(app: Flask, alice_id: int) -> None:
    """The page and the CLI add and edit through these two functions; the API schema is only the first check."""
    registry = Registry(dict(app.config))
    with get_db(app).session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        with pytest.raises(InvalidInput) as refused:
            add_destination(session, registry, user, "email", "Friend\r\nBcc: evil@x.com", {})
        assert [where for where, _ in refused.value.problems] == ["label"]
        assert "(it contains U+000D)" in refused.value.problems[0][1]
        row = add_destination(session, registry, user, "email", "Friend", {})
        with pytest.raises(InvalidInput) as edited:
            edit_destination(session, registry, user, row.id, {"label": "\u2066x\u2069"})
        assert "U+2066" in edited.value.problems[0][1]
        assert row.label == "Friend"


def test_the_cli_refuses_it_in_one_line_and_changes_nothing(app: Flask, runner: FlaskCliRunner, alice_id: int) -> None:
    added = runner.invoke(args=["destination", "add-email", "alice@example.com", "--json"])
    assert added.exit_code == 0, added.output
    number = str(json.loads(added.stdout)["id"])
    refused = runner.invoke(args=["destination", "edit", "alice@example.com", number, "--label", "a\r\nBcc: b@x.com"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    [line] = [line for line in refused.output.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: label: The label must be one line of visible text") and "U+000D" in line
    assert labels(app) == ["email alice@example.com"]


def test_a_bucket_typed_with_a_line_break_is_refused_as_a_bucket_on_the_page_and_in_the_cli(
    runner: FlaskCliRunner, alice_id: int
) -> None:
    """Their label is `s3://` and the bucket: the bucket's own words say what to fix, not the label's."""
    refused = runner.invoke(args=["destination", "add-s3", "alice@example.com", "--bucket", "my\r\nbucket"])
    assert refused.exit_code != 0 and "bucket" in refused.output and "The label" not in refused.output
