"""The forms of an account's life (sign up, reset, change password), and the checks they share.

Why one message per field and never the library's own: hostile input
(a 10,000-character address, a name carrying `\\r\\nBcc:` or an encoded word
`=?UTF-8?Q?=0A?=`, lone surrogates) must get one clear sentence a person can
act on, not a traceback or a validator's internals echoing the input back.
Addresses are checked by `account.canonical.email_address`, the same rule the
CLI, the importer and email destinations use.
"""

from __future__ import annotations

import re
import unicodedata

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from account.canonical import EMAIL_TOO_LONG, MAX_EMAIL_LENGTH, email_address, name_problem
from jobs.schedule import zone_names
from store.passwords import MAX_PASSWORD_LENGTH, password_problem

MAX_NAME = 100
BAD_EMAIL = "Enter one email address, such as name@example.com."
NON_ASCII_EMAIL = (
    "Lifeboat can only send mail to addresses with plain letters (a to z), digits and . _ + - before the @: "
    "use another address."
)
# Line breaks of every kind, and the start of an encoded word: both can become a
# header in a mail program (see TOOLING: Python 3.11.7 decodes `=?…?=` into one).
_HEADER_BREAKERS = re.compile("[\r\n\u2028\u2029\u0085\x0b\x0c]|=\\?")


def email_length(form: FlaskForm, field: Field) -> None:
    """Refuse an address longer than any address can be, saying so (not "fill in both fields": user trial)."""
    if len((field.data or "").strip()) > MAX_EMAIL_LENGTH:
        raise ValidationError(EMAIL_TOO_LONG)


def canonical_email(form: FlaskForm, field: Field) -> None:
    """Accept one address and store its canonical form in `field.data`."""
    email_length(form, field)
    value = field.data or ""
    try:
        field.data = email_address(value)
    except ValueError:
        local = value.strip().rpartition("@")[0]
        if local and not local.isascii() and "@" not in local and "," not in value:
            raise ValidationError(NON_ASCII_EMAIL) from None
        raise ValidationError(BAD_EMAIL) from None


def display_name(form: FlaskForm, field: Field) -> None:
    """A name for greetings: printable text on one line, no encoded words, at most MAX_NAME characters."""
    value = (field.data or "").strip()
    if len(value) > MAX_NAME:
        raise ValidationError(f"Use a name of at most {MAX_NAME} characters.")
    if _HEADER_BREAKERS.search(value) or any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in value):
        raise ValidationError("Use a name on one line, without control characters or '=?'.")
    hidden = name_problem("Your name", value)  # what is left: the text-direction overrides and isolates
    if hidden:
        raise ValidationError(hidden)
    field.data = unicodedata.normalize("NFC", value) or None


def new_password(form: FlaskForm, field: Field) -> None:
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


# An empty field gets its own words: "the passwords differ" for an empty form sent a user trial
# looking for a difference that was not there.
REQUIRED_EMAIL = DataRequired("Enter your email address, such as name@example.com.")
REQUIRED_PASSWORD = DataRequired("Choose a password.")
SAME = "The two new passwords differ; type the same one twice."
AGAIN = DataRequired("Type the password again.")
AGAIN_NEW = DataRequired("Type the new password again.")


def known_zone(value: object) -> str:
    """`value` if it is an IANA zone name a schedule accepts, else "UTC": never an error to show.

    Why never an error: the sign-up form's zone comes from the browser
    (static/timezone.js), not from the person, who could not fix it; without
    JavaScript, or from an odd browser, the account starts in UTC as before.
    """
    text = value.strip() if isinstance(value, str) else ""
    return text if 0 < len(text) <= 64 and text in zone_names() else "UTC"


class SignUpForm(FlaskForm):
    email = EmailField("Email", validators=[REQUIRED_EMAIL, canonical_email])
    name = StringField("Your name (optional)", validators=[Optional(), display_name])
    password = PasswordField("Password", validators=[REQUIRED_PASSWORD, new_password])
    confirm = PasswordField("Password again", validators=[AGAIN, EqualTo("password", SAME)])
    # Set by static/timezone.js from the browser; checked by `known_zone` (user trial 7: every new web
    # user saw times in UTC until they found Settings).
    timezone = HiddenField("Time zone", filters=[known_zone])


class ResetRequestForm(FlaskForm):
    email = EmailField("Email", validators=[REQUIRED_EMAIL, canonical_email])


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[REQUIRED_PASSWORD, new_password])
    confirm = PasswordField("New password again", validators=[AGAIN_NEW, EqualTo("password", SAME)])


class PasswordChangeForm(FlaskForm):
    # Capped before anything hashes it; no real password is longer than MAX_PASSWORD_LENGTH.
    current = PasswordField(
        "Current password",
        validators=[
            DataRequired("Enter your current password."),
            Length(max=MAX_PASSWORD_LENGTH, message="That is not your current password."),
        ],
    )
    password = PasswordField("New password", validators=[REQUIRED_PASSWORD, new_password])
    confirm = PasswordField("New password again", validators=[AGAIN_NEW, EqualTo("password", SAME)])


class ResendForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""
