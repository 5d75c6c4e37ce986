"""An email address longer than any address can be is refused in words that say so, wherever it is typed.

Why: a user trial pasted a 100,000-character address into the sign-in form and
was told to "fill in both fields", which they had. The limit is email-validator's
(254 characters, `account.canonical.MAX_EMAIL_LENGTH`), the one every form, the
API and the importer already enforce; the words are one sentence, never the
address echoed back.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from account.canonical import EMAIL_TOO_LONG, email_address
from tests.web.conftest import PASSWORD, csrf_token, sign_in

HUGE = "a" * 100_000 + "@example.com"
JUST_TOO_LONG = "a" * 60 + "@" + "b" * 190 + ".com"  # 255 characters
WORDS = "That email address is too long (at most 254 characters)."


def test_the_words_and_the_limit_are_the_canonical_rules() -> None:
    assert EMAIL_TOO_LONG == WORDS
    assert len(JUST_TOO_LONG) == 255
    for address in (HUGE, JUST_TOO_LONG):
        with pytest.raises(ValueError) as refused:
            email_address(address)
        assert str(refused.value) == WORDS  # the address is not echoed back


@pytest.mark.parametrize("address", [HUGE, JUST_TOO_LONG], ids=["100,000 characters", "255 characters"])
def test_sign_in_with_a_too_long_address_says_it_is_too_long_not_fill_in_both_fields(
    app: Flask, alice_user: int, address: str
) -> None:
    response = sign_in(app.test_client(), email=address, password=PASSWORD)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count(WORDS) == 2, page  # the alert at the top and the field's own message
    assert "fill in both fields" not in page
    assert 'id="email-error"' in page and 'id="password-error"' not in page


def test_sign_in_with_an_empty_field_still_asks_for_both(app: Flask, alice_user: int) -> None:
    page = sign_in(app.test_client(), email="", password=PASSWORD).get_data(as_text=True)
    assert "Please fill in both fields to sign in." in page and WORDS not in page


@pytest.mark.parametrize("path", ["/signup", "/reset"])
def test_sign_up_and_reset_forms_say_the_address_is_too_long(app: Flask, path: str) -> None:
    client = app.test_client()
    form = {"email": HUGE, "name": "Bob", "password": "a long new password", "confirm": "a long new password"}
    response = client.post(path, data={**form, "csrf_token": csrf_token(client, path)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="email-error"' in page and WORDS in page, page
    assert "a" * 300 not in page.replace(f'value="{HUGE}"', "")  # kept in its field, not echoed in a message


def test_an_email_destination_form_says_the_address_is_too_long(signed_in: FlaskClient) -> None:
    page_path = "/settings/destinations"
    response = signed_in.post(page_path + "/email", data={"to": HUGE, "csrf_token": csrf_token(signed_in, page_path)})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="to-error"' in page and WORDS in page
