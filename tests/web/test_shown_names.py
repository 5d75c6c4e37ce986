"""Names people read refuse control and text-direction characters, with one message naming the field.

User trial 7, item 12: `POST /api/v1/tokens {"name": "\\u202eevil\\u0000"}` was stored with its
right-to-left override, and `"a\\r\\nb"` with its line break; the token list and the support
console then showed text that reads otherwise than it is.
"""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from account.canonical import name_problem
from store import ApiToken, Database
from tests.web.conftest import csrf_token

HIDDEN = ["\u202eevil\u0000", "a\r\nb", "line\nbreak", "nul\x00", "esc\x1b[31m", "c1\x85", "\u202ax", "\u2066x\u2069",
          "para\u2029graph", "tab\there"]  # fmt: skip


@pytest.mark.parametrize("value", HIDDEN)
def test_the_validator_names_the_field_and_the_character(value: str) -> None:
    problem = name_problem("The token name", value)
    assert problem is not None
    assert problem.startswith("The token name must be one line of visible text")
    hidden = next(ch for ch in value if name_problem("x", ch))
    assert f"U+{ord(hidden):04X}" in problem


@pytest.mark.parametrize("value", ["NAS script", "Zoë 山田", "عربي", "backup\u00a0box", "emoji 🚣", "a\u200db"])
def test_ordinary_names_in_any_script_pass(value: str) -> None:
    assert name_problem("The token name", value) is None


def test_the_settings_page_refuses_it_with_the_same_words(signed_in: FlaskClient, db: Database) -> None:
    token = csrf_token(signed_in, "/settings")
    refused = signed_in.post("/settings/tokens", data={"name": "\u202eevil", "lifetime": "30", "csrf_token": token})
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 400
    assert "The token name must be one line of visible text" in page and "U+202E" in page
    with db.session() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_the_job_refuses_it_whoever_calls_it(db: Database, alice_user: int) -> None:
    """Staff tokens and the CLI go through `create_token` too."""
    from errors import InvalidInput
    from jobs.api_tokens import create_token
    from store.base import utcnow

    with db.session(write=True) as session, pytest.raises(InvalidInput) as refused:
        create_token(session, alice_user, "ops\u202e", days=30, now=utcnow())
    assert refused.value.problems[0][0] == "name"
    assert re.search(r"The token name .* \(it contains U\+202E\)", refused.value.problems[0][1])
