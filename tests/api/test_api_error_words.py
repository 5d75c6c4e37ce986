"""A user trial: 422s said "_schema: Invalid input type.", "Not a valid string.", "Unknown field."

Every kind of bad input now reads as one sentence naming the field and what it
must be (`web.api.plain_words`), and the project's own messages are unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Call

FRAMEWORK_WORDS = ("Not a valid", "Invalid input", "Unknown field", "Missing data", "_schema", "Invalid type")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": 5}, "name", "must be text (a JSON string)"),
        ({"name": "script", "expires_in_days": "5"}, "expires_in_days", "must be a whole number"),
        ({"name": "script", "expires_in_days": 5.5}, "expires_in_days", "must be a whole number"),
        ({"name": "script", "expires_in_days": 0}, "expires_in_days", "must be between 1 and 366"),
        (
            {"name": "script", "colour": "red"},
            "colour",
            "is not a field this request takes; the API document lists the fields",
        ),
        ({}, "name", "is required"),
        ({"name": None}, "name", "cannot be null; give a value or leave the field out"),
        ([{"name": "script"}], "body", "The body must be a JSON object (got a list)"),
        ("script", "body", "The body must be a JSON object (got a string)"),
        (7, "body", "The body must be a JSON object (got a number)"),
    ],
)
def test_each_kind_of_bad_token_request_is_one_plain_sentence(
    as_alice: Call, body: Any, field: str, words: str
) -> None:
    answer = as_alice("post", "/api/v1/tokens", json=body)
    error = answer.get_json()
    assert answer.status_code == 422 and error["code"] == "invalid_input"
    assert error["problems"] == [{"field": field, "message": words}]
    assert error["message"] == (words if field == "body" else f"{field}: {words}") + "."
    assert not any(framework in error["message"] for framework in FRAMEWORK_WORDS)


def test_a_destination_names_every_field_in_one_sentence(as_alice: Call) -> None:
    answer = as_alice("post", "/api/v1/destinations", json={"kind": "ftp", "to": 1, "path_style": 1})
    error = answer.get_json()
    assert answer.status_code == 422
    assert {(p["field"], p["message"]) for p in error["problems"]} == {
        ("kind", "must be one of: s3, email"),
        ("to", "must be text (a JSON string)"),
        ("path_style", "must be true or false"),
    }
    assert error["message"].count(";") == 2 and error["message"].endswith(".") and "\n" not in error["message"]
    missing = as_alice("post", "/api/v1/destinations", json={"to": "me@example.org"}).get_json()
    assert missing["message"] == "kind: is required."


def test_lists_and_their_items_are_named(as_alice: Call) -> None:
    not_a_list = as_alice("put", "/api/v1/options", json={"kinds": "contacts"}).get_json()
    assert not_a_list["message"] == "kinds: must be a list (a JSON array)."
    not_text = as_alice("put", "/api/v1/options", json={"kinds": [1]}).get_json()
    assert not_text["message"] == "kinds.0: must be text (a JSON string)."


def test_query_parameters_are_called_parameters(as_alice: Call) -> None:
    answer = as_alice("get", "/api/v1/runs?limit=abc&limt=3")
    assert answer.status_code == 422
    assert answer.get_json()["message"] == (
        "limit: must be a whole number; "
        "limt: is not a parameter this request takes; the API document lists the parameters."
    )
    assert as_alice("get", "/api/v1/runs?limit=0").get_json()["message"] == "limit: must be between 1 and 100."


def test_the_projects_own_messages_are_unchanged(as_alice: Call) -> None:
    answer = as_alice("post", "/api/v1/tokens", json={"name": "a\nb"})
    problem = answer.get_json()["problems"][0]
    assert answer.status_code == 422 and problem["field"] == "name"
    assert problem["message"].startswith("The token name must be one line of visible text")


def test_a_field_the_project_words_itself_is_not_also_given_the_generic_words(as_alice: Call) -> None:
    """An empty name broke both a length rule and `ShownName`: only the project's sentence is shown."""
    answer = as_alice("post", "/api/v1/tokens", json={"name": ""})
    assert answer.status_code == 422
    assert answer.get_json()["problems"] == [{"field": "name", "message": "Give it a name."}]
    assert answer.get_json()["message"] == "name: Give it a name."
