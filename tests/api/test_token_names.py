"""The API refuses token names with control or text-direction characters (user trial 7, item 12; see
tests/web/test_shown_names.py for the validator and the settings page)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import ApiToken, Database
from tests.api.conftest import Call


@pytest.mark.parametrize("value", ["\u202eevil\u0000", "a\r\nb", "x\u2067y"])
def test_the_api_refuses_such_a_token_name_and_stores_nothing(as_alice: Call, db: Database, value: str) -> None:
    refused = as_alice("post", "/api/v1/tokens", json={"name": value})
    body = refused.get_json()
    assert refused.status_code == 422, body
    assert body["problems"][0]["field"] == "name"
    assert body["problems"][0]["message"].startswith("The token name must be one line of visible text")
    with db.session() as session:
        assert session.scalars(select(ApiToken.name)).all() == ["script"]  # the fixture's token only
