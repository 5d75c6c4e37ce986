"""The forms of the destinations page: an S3-compatible bucket, an email address, and the per-row buttons.

Why only shape here: what makes a bucket, region, prefix, key or address valid
is decided by `jobs.destination_setup.add_destination` (which builds the real
backend), shared with the API and the CLI; the page turns its `problems` into
field errors instead of repeating the rules.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from delivery.retention_policy import MAX_COUNT, RetentionPolicy
from delivery.s3.object_lock import MAX_DAYS
from web.account_forms import email_length

AUTH_CHOICES = [
    SelectChoice("keys", "Access key and secret key"),
    SelectChoice("role", "An IAM role Lifeboat assumes (AWS only)"),
]


LOCK_CHOICES = [
    SelectChoice("off", "Off: archives can be deleted"),
    SelectChoice("governance", "Governance: only someone allowed to bypass it can delete early"),
    SelectChoice("compliance", "Compliance: nobody can delete early, not even the bucket's owner"),
]


class S3Form(FlaskForm):
    endpoint_url = StringField("Endpoint URL (leave empty for AWS)", validators=[Length(max=2000)])
    region = StringField("Region", validators=[Length(max=64)], default="us-east-1")
    bucket = StringField("Bucket", validators=[Length(max=255)])
    prefix = StringField("Folder in the bucket (prefix)", validators=[Length(max=500)], default="lifeboat")
    path_style = BooleanField("Path-style addresses (MinIO and some other stores need this)")
    auth = RadioField("How Lifeboat signs in", choices=AUTH_CHOICES, default="keys")
    access_key_id = StringField("Access key ID", validators=[Length(max=200)])
    secret_access_key = PasswordField("Secret access key", validators=[Length(max=200)])
    role_arn = StringField("Role ARN", validators=[Length(max=2048)])
    lock_mode = SelectField("Lock each archive (S3 Object Lock)", choices=LOCK_CHOICES, default="off")
    lock_days = IntegerField(
        "Days each archive stays locked",
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_DAYS, message=f"Enter a whole number of days from 1 to {MAX_DAYS}."),
        ],
    )

    @property
    def bucket_name(self) -> str:
        """The bucket as typed, trimmed; "" when the field was not sent at all (a hand-made POST)."""
        return (self.bucket.data or "").strip()

    def settings(self) -> dict[str, object]:
        """What `add_destination` takes: the chosen way of signing in only, empty fields left out."""
        values: dict[str, object] = {
            "endpoint_url": self.endpoint_url.data,
            "region": self.region.data,
            "bucket": self.bucket.data,
            "prefix": self.prefix.data,
            "path_style": bool(self.path_style.data),
            "lock_mode": self.lock_mode.data or "off",
            # Off ignores the days; "" also clears days stored before.
            "lock_days": "" if self.lock_mode.data in (None, "", "off") else self.lock_days.data,
        }
        if self.auth.data == "role":
            values["role_arn"] = self.role_arn.data
        else:
            values["access_key_id"] = self.access_key_id.data
            values["secret_access_key"] = self.secret_access_key.data
        return {name: value.strip() if isinstance(value, str) else value for name, value in values.items()}


class EmailForm(FlaskForm):
    to = StringField("Email address", validators=[email_length])


def edit_form(kind: str, destination_id: int, settings: dict[str, Any] | None = None) -> S3Form | EmailForm:
    """The add form of this kind, prefixed per destination; with `settings`, filled from them, else from the POST.

    Why the add forms: editing takes the same fields under the same rules. The
    key fields start empty: a blank secret means "keep the stored one", so a
    stored secret (or key ID) never goes back to the page.
    """
    prefix = f"edit-{destination_id}"
    form_class: type[S3Form] | type[EmailForm] = S3Form if kind == "s3" else EmailForm
    if settings is None:
        return form_class(prefix=prefix)
    shown = {k: v for k, v in settings.items() if k in _SHOWN}
    if kind == "s3":
        shown["auth"] = "role" if settings.get("role_arn") else "keys"
    return form_class(formdata=None, prefix=prefix, data=shown)


_SHOWN = ("endpoint_url", "region", "bucket", "prefix", "path_style", "role_arn", "lock_mode", "lock_days", "to")


def edit_changes(form: S3Form | EmailForm) -> dict[str, object]:
    """What `edit_destination` takes from a submitted edit form: every field, the unchosen way of signing in off."""
    if isinstance(form, EmailForm):
        return {"to": (form.to.data or "").strip()}
    changes = form.settings()
    if form.auth.data != "role":
        changes["role_arn"] = ""  # keys chosen: a stored role is dropped
    return changes


class RowForm(FlaskForm):
    """No fields: the Test and Remove buttons' forms exist for their CSRF token."""


def _count(label: str) -> IntegerField:
    return IntegerField(
        label,
        validators=[
            Optional(),
            NumberRange(min=0, max=MAX_COUNT, message=f"Enter a whole number from 0 (off) to {MAX_COUNT}."),
        ],
    )


class RetentionForm(FlaskForm):
    """One bucket's retention policy; each destination's form has its own prefix (`retention-<id>`)."""

    retention_keep = _count("Keep the last")
    retention_daily = _count("Days (one a day)")
    retention_weekly = _count("Weeks (one a week)")
    retention_monthly = _count("Months (one a month)")
    retention_yearly = _count("Years (one a year)")

    def fill(self, policy: RetentionPolicy | None) -> RetentionForm:
        """Show the stored policy (empty for a rule that is off)."""
        for name, value in (policy or RetentionPolicy()).as_settings().items():
            getattr(self, name).data = value
        return self

    def policy(self) -> RetentionPolicy:
        """The policy as entered; empty fields are 0 (off). Call after `validate`."""
        return RetentionPolicy.from_settings(
            {name: getattr(self, name).data for name in RetentionPolicy().as_settings()}
        )
