"""The forms of the settings page: schedule, archive options, API tokens.

Why the checks here are only about shape (a choice from the list, HH:MM, a
known zone): the schedule's rules live in `jobs.schedule.ScheduleSpec.validate`,
which the CLI and the API share; the form turns its `problems` into field
errors rather than repeating them.
"""

from __future__ import annotations

import re
import unicodedata

from flask_wtf import FlaskForm
from wtforms import (
    Field,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, NumberRange, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from account.canonical import name_problem
from jobs.api_tokens import NAME_FIELD, NAME_LIMIT, NAME_WORDS
from jobs.schedule import zone_names
from jobs.user_schedule import WEEKDAYS

FREQUENCIES = [
    SelectChoice(value, label)
    for value, label in (("off", "Off"), ("daily", "Every day"), ("weekly", "Every week"), ("monthly", "Every month"))
]
TOKEN_LIFETIMES = [
    SelectChoice(value, label) for value, label in (("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
]
VCARD_VERSIONS = [
    SelectChoice("default", "Server default"),
    SelectChoice("3.0", "vCard 3.0 (widest support)"),
    SelectChoice("4.0", "vCard 4.0 (RFC 6350)"),
]
KIND_CHOICES = [
    SelectChoice("contacts", "Contacts (vCard)"),
    SelectChoice("calendars", "Calendars (iCalendar)"),
    SelectChoice("notes", "Notes (Markdown, with attachments)"),
]
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def time_of_day(form: FlaskForm, field: Field) -> None:
    value = (field.data or "").strip()
    # <input type=time> may send seconds ("02:00:00") in some browsers.
    if len(value) == 8 and value.endswith(":00"):
        value = value[:5]
    if not _TIME.fullmatch(value):
        raise ValidationError("Give the time as HH:MM on a 24-hour clock, such as 02:00 or 23:30.")
    field.data = value


def time_zone(form: FlaskForm, field: Field) -> None:
    value = (field.data or "").strip()
    if value not in zone_names():
        raise ValidationError("Choose a time zone from the list, such as Europe/Berlin or America/New_York.")
    field.data = value


def token_name(form: FlaskForm, field: Field) -> None:
    value = (field.data or "").strip()
    if not value or len(value) > NAME_LIMIT:
        raise ValidationError(NAME_WORDS)
    hidden = name_problem(NAME_FIELD, value)
    if hidden or any(unicodedata.category(ch) == "Co" for ch in value):
        raise ValidationError(hidden or "Use a name without private-use characters.")
    field.data = unicodedata.normalize("NFC", value)


class ScheduleForm(FlaskForm):
    frequency = SelectField("How often", choices=FREQUENCIES, default="weekly")
    time_of_day = StringField(
        "Time of day", validators=[DataRequired("Give a time of day."), time_of_day], default="02:00"
    )
    weekday = SelectField(
        "Day of the week (weekly)",
        choices=[SelectChoice(n, day.capitalize()) for n, day in enumerate(WEEKDAYS)],
        coerce=int,
        default=0,
    )
    day_of_month = IntegerField(
        "Day of the month (monthly)",
        validators=[InputRequired("Give a day of the month."), NumberRange(1, 31, "Choose a day from 1 to 31.")],
        default=1,
    )
    timezone = StringField("Time zone", validators=[DataRequired("Choose a time zone."), time_zone], default="UTC")
    preview = SubmitField("Preview next runs")
    save = SubmitField("Save schedule")


class ArchiveForm(FlaskForm):
    """The rules (at least one kind, known values) are `jobs.archive_options`', shared with the API."""

    vcard_version = SelectField(
        "vCard version of contacts",
        choices=VCARD_VERSIONS,
    )
    # Checkboxes; no `validate_choice`: an empty or odd choice gets the service's own words.
    kinds = SelectMultipleField(
        "Include in each archive",
        choices=KIND_CHOICES,
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class SealKeyForm(FlaskForm):
    """The public key archives are encrypted to; its rules are `delivery.sealing`'s, through `jobs.archive_options`."""

    seal_key = TextAreaField("Your public key (age, SSH or OpenPGP)")
    save = SubmitField("Encrypt my archives to this key")
    stop = SubmitField("Stop encrypting")


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[token_name])
    lifetime = SelectField("Expires after", choices=TOKEN_LIFETIMES, default="90")


class RevokeForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""
