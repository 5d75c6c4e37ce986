"""One address, one email destination per account: the page, the API and the CLI refuse it twice, and name it alike.

The trial: `lifeboat destination add-email alice@example.com` (no `--to`: the
account's own address) after adding `--to Alice@Example.com` made two
destinations, and every archive was mailed twice. And the API named an address
`x@…` where the page named it `email x@…`.
"""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from store import Destination, get_db
from tests.api.conftest import make_token
from tests.web.conftest import csrf_token

OWN = "alice@example.com"
PAGE = "/settings/destinations"


def labels(app: Flask, user_id: int) -> list[str]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Destination.label).where(Destination.user_id == user_id)))


def add_on_the_page(client: FlaskClient, to: str) -> str:
    answer = client.post(PAGE + "/email", data={"to": to, "csrf_token": csrf_token(client, PAGE)})
    return f"{answer.status_code} {answer.get_data(as_text=True)}"


def test_the_cli_refuses_the_accounts_own_address_twice_in_one_line_naming_the_one_it_has(
    app: Flask, alice_user: int
) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["destination", "add-email", OWN, "--json"])
    assert first.exit_code == 0, first.output
    existing = json.loads(first.stdout)
    for again in (["--to", "Alice@EXAMPLE.com "], []):  # the same address named, or left to the default
        refused = runner.invoke(args=["destination", "add-email", OWN, *again])
        assert refused.exit_code != 0
        (line,) = refused.output.strip().splitlines()
        assert line == (
            f"Error: You already have this destination (email {OWN}, id {existing['id']}): "
            "change or remove that one rather than add it twice"
        )
    assert labels(app, alice_user) == [f"email {OWN}"]


def test_the_api_refuses_an_address_the_account_has_with_a_one_line_409(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token(get_db(app), alice_user)}"}
    first = client.post("/api/v1/destinations", json={"kind": "email"}, headers=headers)  # no `to`: its own
    assert first.status_code == 201
    refused = client.post("/api/v1/destinations", json={"kind": "email", "to": "ALICE@example.com"}, headers=headers)
    assert refused.status_code == 409
    assert refused.get_json() == {
        "code": "destination_exists",
        "message": f"You already have this destination (email {OWN}, id {first.get_json()['id']}): "
        "change or remove that one rather than add it twice",
    }
    assert labels(app, alice_user) == [f"email {OWN}"]


def test_the_page_refuses_an_address_the_cli_added_as_the_default_with_a_form_error(
    app: Flask, alice_user: int, signed_in: FlaskClient
) -> None:
    assert app.test_cli_runner().invoke(args=["destination", "add-email", OWN]).exit_code == 0
    refused = add_on_the_page(signed_in, "Alice@Example.com")
    assert refused.startswith("400 ") and "You already have this destination (email alice@example.com" in refused
    assert labels(app, alice_user) == [f"email {OWN}"]


def test_one_address_gets_the_same_name_from_the_page_the_api_and_the_cli(
    app: Flask, alice_user: int, signed_in: FlaskClient
) -> None:
    assert add_on_the_page(signed_in, "Friend@Example.net").startswith("302 ")
    headers = {"Authorization": f"Bearer {make_token(get_db(app), alice_user)}"}
    client = app.test_client()
    api = client.post("/api/v1/destinations", json={"kind": "email", "to": "other@example.net"}, headers=headers)
    own = client.post("/api/v1/destinations", json={"kind": "email"}, headers=headers)
    cli = app.test_cli_runner().invoke(args=["destination", "add-email", OWN, "--to", "third@example.net"])
    assert api.status_code == own.status_code == 201 and cli.exit_code == 0, cli.output
    assert labels(app, alice_user) == [
        "email friend@example.net",
        "email other@example.net",
        f"email {OWN}",
        "email third@example.net",
    ]


def test_the_api_document_says_adding_an_address_twice_answers_409() -> None:
    from tests.api.test_openapi import APP

    paths = APP.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert "destination_exists" in paths["/api/v1/destinations"]["post"]["responses"]["409"]["description"]
