"""The JSON API's request and response shapes: marshmallow schemas, the source of the OpenAPI document.

Why schemas rather than hand-built dicts: the same declarations validate what
comes in, shape what goes out and describe both in `/api/v1/openapi.json`, so
the document cannot drift from the code (schemathesis checks that it has not).
Times are ISO 8601 in UTC; ids are strings except destinations' (integers).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from account.canonical import EMAIL_TOO_LONG, MAX_EMAIL_LENGTH, name_problem
from account.records import KINDS
from delivery.retention_policy import MAX_COUNT
from delivery.s3.object_lock import MAX_DAYS as MAX_LOCK_DAYS
from delivery.s3.object_lock import MODES as LOCK_MODES
from jobs.api_tokens import DEFAULT_DAYS, MAX_DAYS, NAME_FIELD, NAME_LIMIT
from jobs.destination_setup import LABEL_FIELD
from jobs.schedule import zone_names

_ID = validate.Regexp(r"^[0-9a-f]{32}$", error="Not an id.")


class JsonInteger(fields.Integer):
    """A JSON number without a fraction: not "5", not 5.5, not true (marshmallow would take all three)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonBoolean(fields.Boolean):
    """JSON true or false only (marshmallow would also take 0, 1, "yes")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):  # 0 == False in Python, so truthy/falsy sets cannot say this
            raise self.make_error("invalid")
        return value


class ProblemSchema(Schema):
    field = fields.String(required=True, metadata={"description": "Where: a field name or location."})
    message = fields.String(required=True)


class ErrorSchema(Schema):
    """Every error under /api/: a stable code to branch on and a sentence to show a person."""

    code = fields.String(required=True, metadata={"example": "not_found"})
    message = fields.String(required=True)
    problems = fields.List(fields.Nested(ProblemSchema), metadata={"description": "One entry per invalid field."})


class PageArgsSchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=_ID, metadata={"description": "`next_cursor` of the previous page."})


class MeSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(allow_none=True, required=True)
    timezone = fields.String(required=True)
    vcard_version = fields.String(required=True, metadata={"description": "3.0 or 4.0: what this user's archives use."})


class CountsSchema(Schema):
    contacts = fields.Integer(required=True)
    calendars = fields.Integer(required=True)
    events = fields.Integer(required=True, metadata={"description": "A repeating event counts once."})
    notes = fields.Integer(required=True)
    attachments = fields.Integer(required=True)
    summary = fields.String(required=True, metadata={"description": "The figures as the dashboard writes them."})
    last_change_at = fields.DateTime(allow_none=True, required=True)


class DeliveryAttemptSchema(Schema):
    """One try to deliver the run's archive to one destination, with the destination's receipt."""

    at = fields.DateTime(required=True)
    destination = fields.String(required=True, metadata={"description": "The destination's label."})
    destination_id = fields.Integer(allow_none=True, required=True, metadata={"description": "None once removed."})
    outcome = fields.String(required=True, metadata={"enum": ["delivered", "transient", "permanent"]})
    location = fields.String(
        allow_none=True, required=True, metadata={"description": "s3://bucket/key or mailto:recipient."}
    )
    message = fields.String(required=True, metadata={"description": "How it was checked, or what to fix."})
    object_key = fields.String(allow_none=True, required=True, metadata={"description": "S3: the key in the bucket."})
    version_id = fields.String(
        allow_none=True, required=True, metadata={"description": "S3: the object's version (versioned buckets)."}
    )
    etag = fields.String(allow_none=True, required=True, metadata={"description": "S3: the ETag, without quotes."})
    message_id = fields.String(
        allow_none=True, required=True, metadata={"description": "Email: the Message-ID header it was sent with."}
    )
    archive_sha256 = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "Delivered: the SHA-256 of the archive (`lifeboat verify --expect`); when sealed, "
            "of the archive once decrypted."
        },
    )
    sealed_to = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Delivered sealed: the public key the archive was encrypted to before it left."},
    )
    sealed_sha256 = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "Delivered sealed: the SHA-256 of the encrypted file the destination holds, and of no "
            "other copy: each encryption (a download link's too) is new ciphertext. Decrypted, every copy matches "
            "`archive_sha256`."
        },
    )
    sealed_size = fields.Integer(
        allow_none=True, required=True, metadata={"description": "Delivered sealed: the encrypted file's size."}
    )


class StageSchema(Schema):
    """One stage of one attempt (starting, contacts, calendars, notes, verified, deliver, done)."""

    attempt = fields.Integer(required=True)
    name = fields.String(required=True)
    started_at = fields.DateTime(required=True)
    seconds = fields.Float(
        allow_none=True, required=True, metadata={"description": "How long it took; null while going on, and for done."}
    )


class RunEventSchema(Schema):
    at = fields.DateTime(required=True)
    level = fields.String(required=True)
    kind = fields.String(required=True)
    message = fields.String(required=True)


class RunSchema(Schema):
    id = fields.String(required=True)
    trigger = fields.String(required=True)
    state = fields.String(
        required=True, metadata={"enum": ["queued", "running", "retrying", "delivered", "failed", "cancelled"]}
    )
    stage = fields.String(allow_none=True, required=True)
    progress = fields.Integer(required=True, metadata={"description": "Percent."})
    attempt = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True, required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)
    next_attempt_at = fields.DateTime(allow_none=True, required=True, metadata={"description": "When retrying."})
    error = fields.String(allow_none=True, required=True, metadata={"description": "What went wrong and what to do."})
    archive_id = fields.String(allow_none=True, required=True)
    delivered_to = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Where the archive arrived, in words (an email address, s3://bucket/folder), "
            "in delivery order; empty when it arrived nowhere yet.",
            "example": ["demo-copy@example.net"],
        },
    )
    partly_delivered = fields.Boolean(
        required=True,
        metadata={
            "description": "The run failed (state failed) after some destinations got their copy: delivered_to "
            "names them, attempts say which did not and why."
        },
    )


class DifferenceSchema(Schema):
    """One field of one item that did not come back from the archive as it went in."""

    kind = fields.String(
        required=True,
        metadata={"enum": ["contact", "calendar", "event", "note", "archive"], "example": "contact"},
    )
    item = fields.String(
        required=True, metadata={"description": "The item's id: contact or event UID, calendar name, note id."}
    )
    field = fields.String(
        required=True,
        metadata={
            "description": "The field's path in the record; '(whole item)' for an item missing or added.",
            "example": "emails[1].value",
        },
    )
    expected = fields.String(
        required=True,
        metadata={"description": "What went in, cut short; 'absent' for nothing.", "example": "'a@x.org'"},
    )
    found = fields.String(
        required=True,
        metadata={"description": "What was read back, cut short; 'absent' for nothing.", "example": "absent"},
    )


class FidelitySchema(Schema):
    """What the export's fidelity drill found when it read its archive back, and what the export changed."""

    items = fields.Integer(required=True, metadata={"description": "Records read back and compared."})
    differences = fields.Integer(
        required=True, metadata={"description": "Records that did not come back as they went in."}
    )
    summary = fields.String(required=True, metadata={"example": "Read back 1,234 items: 0 differences"})
    difference_lines = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The first differences: item, field, expected and found."},
    )
    changes = fields.Integer(
        required=True, metadata={"description": "Items the export had to change, listed in manifest.json."}
    )
    changes_summary = fields.String(required=True, metadata={"example": "0 changes: every item is carried exactly"})
    change_lines = fields.List(
        fields.String(), required=True, metadata={"description": "The first changes: item, what, where and why."}
    )
    checked_at = fields.DateTime(required=True)
    method = fields.String(
        required=True,
        metadata={
            "enum": ["full", "memo"],
            "description": "full: every item parsed from the archive again; memo: items whose exact bytes earlier "
            "drills read back equal to the same record were not parsed again (counted in items and skipped).",
        },
    )
    skipped = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "Of items, how many were proven by earlier drills and not parsed again; "
            "null for runs checked before this was kept."
        },
    )
    read_again = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Of items, how many were parsed from the archive this time (items - skipped)."},
    )
    reading = fields.String(
        required=True,
        metadata={
            "description": "How much was read again, in words; empty when not kept.",
            "example": "12,000 items compared, 11,900 proven by earlier drills (100 read again)",
        },
    )
    difference_details = fields.List(
        fields.Nested(DifferenceSchema),
        required=True,
        metadata={
            "description": "The first differences as fields, one per difference_lines line and in its order; "
            "empty for runs checked before they were kept (difference_lines still has them)."
        },
    )


class RunDetailSchema(RunSchema):
    stages = fields.List(fields.Nested(StageSchema), required=True)
    attempts = fields.List(fields.Nested(DeliveryAttemptSchema), required=True)
    history = fields.List(fields.Nested(RunEventSchema), required=True)
    fidelity = fields.Nested(
        FidelitySchema,
        allow_none=True,
        required=True,
        metadata={"description": "The archive read back; null for a run that made no new archive."},
    )


class RunPageSchema(Schema):
    items = fields.List(fields.Nested(RunSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ArchiveCountsSchema(Schema):
    contacts = fields.Integer(required=True)
    calendars = fields.Integer(required=True)
    events = fields.Integer(required=True)
    notes = fields.Integer(required=True)
    attachments = fields.Integer(required=True)


class SealedDownloadSchema(Schema):
    """How a download link serves an archive while the user's archives are encrypted to their key."""

    kind = fields.String(required=True, metadata={"enum": ["age", "openpgp"]})
    sealed_to = fields.String(required=True, metadata={"description": "The public key it is encrypted to."})
    filename = fields.String(
        required=True, metadata={"description": "What to save the download as: the archive's name plus .age or .gpg."}
    )
    sha256_is_of = fields.String(
        required=True,
        metadata={
            "enum": ["plaintext"],
            "description": "The archive's `sha256` and `size` are the plain zip's, once decrypted: check the "
            "decrypted file against them.",
        },
    )
    download_sha256_header = fields.String(
        required=True,
        metadata={
            "enum": ["X-Content-SHA256"],
            "description": "Each download is encrypted afresh (a different file each time, no HTTP Range): the "
            "response header that gives the SHA-256 of the very bytes sent, to check the download against.",
        },
    )
    decrypt_command = fields.String(
        required=True, metadata={"description": "The standard tool's command that opens the download."}
    )


class ArchiveSchema(Schema):
    id = fields.String(required=True)
    filename = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    size = fields.Integer(required=True, metadata={"description": "Bytes."})
    sha256 = fields.String(
        required=True,
        metadata={
            "description": "The SHA-256 of the plain zip. When `sealed_download` is set, a download link serves it "
            "encrypted, so this is the digest of the download once decrypted."
        },
    )
    sealed_download = fields.Nested(
        SealedDownloadSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "Set while your archives are encrypted to your key (settings): download links serve "
            "this archive encrypted to it. Null: links serve the plain zip (or, while a stored key can no longer be "
            "used, refuse with 403: see `seal_problem` in /options)."
        },
    )
    counts = fields.Nested(ArchiveCountsSchema, required=True)
    verified_at = fields.DateTime(allow_none=True, required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)


class ManifestSummarySchema(Schema):
    format_version = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    files = fields.Integer(required=True, metadata={"description": "Files listed, README and checksums included."})
    total_size = fields.Integer(required=True)
    folders = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    vcard_version = fields.String(allow_none=True, required=True)


class ArchiveDetailSchema(ArchiveSchema):
    manifest = fields.Nested(ManifestSummarySchema, required=True)


class ArchivePageSchema(Schema):
    items = fields.List(fields.Nested(ArchiveSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ChangePageArgsSchema(Schema):
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": "From 1; a page past the last answers the last."},
    )


class ChangeSchema(Schema):
    """One item the export had to change to fit every system (manifest.json's `changes`)."""

    kind = fields.String(required=True, metadata={"enum": ["contact", "calendar", "note", "attachment"]})
    item = fields.String(required=True, metadata={"description": "Contact UID, calendar name, note id, ..."})
    field = fields.String(required=True, metadata={"example": "file name"})
    original = fields.String(
        required=True, metadata={"description": "The name as typed (shortened); empty in archives made before it."}
    )
    path = fields.String(required=True, metadata={"description": "Where the item is in the archive."})
    reason = fields.String(required=True)


class ChangePageSchema(Schema):
    """One page of the archive's changes, 100 to a page, in manifest.json's order."""

    count = fields.Integer(
        allow_none=True, required=True, metadata={"description": "null: made before archives listed changes."}
    )
    summary = fields.String(required=True, metadata={"example": "14,628 changes"})
    page = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    items = fields.List(fields.Nested(ChangeSchema), required=True)


class ScheduleSchema(Schema):
    enabled = fields.Boolean(required=True)
    frequency = fields.String(allow_none=True, required=True, metadata={"enum": ["daily", "weekly", "monthly"]})
    time_of_day = fields.String(allow_none=True, required=True, metadata={"example": "02:00"})
    timezone = fields.String(allow_none=True, required=True)
    weekday = fields.Integer(allow_none=True, required=True, metadata={"description": "0 is Monday."})
    day_of_month = fields.Integer(allow_none=True, required=True)
    next_run_at = fields.DateTime(allow_none=True, required=True)
    delay_seconds = fields.Integer(
        allow_none=True,
        required=True,
        metadata={
            "description": "This account's fixed delay after time_of_day (so that not every account starts at "
            "once); next_run_at includes it.",
            "example": 120,
        },
    )
    paused_reason = fields.String(allow_none=True, required=True)
    description = fields.String(required=True)


class ScheduleInSchema(Schema):
    """Omitted fields keep their value (or the default for a new schedule: weekly, Monday, 02:00).

    The constraints are documented here but checked by `jobs.schedule` (one rule for
    every caller, and its messages say how to fix each field); a wrong value is a 422.
    """

    enabled = JsonBoolean(load_default=True, metadata={"description": "false switches scheduled exports off."})
    frequency = fields.String(metadata={"enum": ["daily", "weekly", "monthly"]})
    time_of_day = fields.String(metadata={"example": "02:00", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"})
    timezone = fields.String(metadata={"example": "Europe/Berlin", "enum": sorted(zone_names())})
    weekday = JsonInteger(metadata={"minimum": 0, "maximum": 6, "description": "0 is Monday."})
    day_of_month = JsonInteger(
        metadata={"minimum": 1, "maximum": 31, "description": "Past a month's end: its last day."}
    )


class CopyCheckSchema(Schema):
    """The latest later check (scrub) of the newest archive delivered to a destination."""

    state = fields.String(
        required=True,
        metadata={
            "enum": ["healthy", "missing", "changed", "unreadable", "unwritable", "error"],
            "description": "What the check found; error: the check itself failed, which says nothing of the copy.",
        },
    )
    problem = fields.Boolean(
        required=True, metadata={"description": "The copy is missing, changed or unreadable, or writes are refused."}
    )
    words = fields.String(required=True, metadata={"example": "Copy changed"})
    detail = fields.String(required=True, metadata={"description": "What the check found, in its words."})
    what_to_do = fields.String(allow_none=True, required=True, metadata={"description": "Null when nothing is wrong."})
    since = fields.DateTime(required=True, metadata={"description": "When a check first found this state."})
    checked_at = fields.DateTime(required=True)
    run_id = fields.String(allow_none=True, required=True, metadata={"description": "The run that delivered it."})
    object_key = fields.String(required=True)


class DestinationSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    label = fields.String(required=True)
    settings = fields.Dict(keys=fields.String(), required=True, metadata={"description": "Never any secret."})
    has_secret = fields.Boolean(required=True)
    enabled = fields.Boolean(required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": "untested, ok, warning or error: the last delivery or test, or error while a later "
            "check finds the delivered copy missing, changed or unreadable (see copy_check); waiting: an email "
            "address whose owner has not followed the link mailed to it yet, so nothing is sent there "
            "(status_message says what to do)."
        },
    )
    status_message = fields.String(allow_none=True, required=True)
    copy_check = fields.Nested(
        CopyCheckSchema,
        allow_none=True,
        required=True,
        metadata={
            "description": "The last check of the newest copy delivered here; null before one (or since a "
            "newer delivery, verified as it arrived)."
        },
    )
    confirmed = fields.Boolean(
        required=True,
        metadata={
            "description": "Whether archives are sent here. A new email address other than the account's own is "
            "false until someone there follows the link mailed to it (POST …/confirmation sends it again)."
        },
    )
    confirmation_sent_at = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={
            "description": "When the latest link went out; null once confirmed, or while none could be sent yet "
            "(see confirmation_resend_at)."
        },
    )
    confirmation_resend_at = fields.DateTime(
        metadata={
            "description": "Only in the answer to adding or changing an email address, when it was saved waiting "
            "but no link was mailed: its mailbox had its hourly budget of links (from any account). From then, "
            "POST …/confirmation can send it."
        },
    )
    retention_summary = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "S3: the retention policy in plain words (settings hold its counts); email: null."},
    )
    lock_summary = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "S3: whether and how long archives are locked (S3 Object Lock); email: null."},
    )


# What `account.canonical.name_problem` refuses, as a pattern the OpenAPI document can carry, and the
# spaces that are left once those are out. Spelled out, never `\s`: `\s` means fewer characters in
# the document's JSON Schema (ECMA-262) pattern than in Python, and the server strips a name with
# `str.strip()`, so with `\s` a name of U+001C was valid by the document and refused by the server.
# Lone surrogates (refused too) are left out: JSON text in UTF-8 cannot carry one, and a pattern naming
# them compiles in no validator built on Rust's regex (schemathesis's), which then enforces none of it.
_HIDDEN = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
_SHOWN_SPACE = " \\xa0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000"
SHOWN_NAME = f"^[{_SHOWN_SPACE}]*[^{_SHOWN_SPACE}{_HIDDEN}][^{_HIDDEN}]*$"


class ShownName(validate.Regexp):
    """A name shown to people: something visible, and nothing `name_problem` refuses, in its words.

    A `Regexp`, so the OpenAPI document carries the same rule (`SHOWN_NAME`) and a
    client can know before asking; `field` is how the message names the field
    ("The token name"). For any schema field holding a name people see.
    """

    def __init__(self, field: str) -> None:
        super().__init__(SHOWN_NAME, error="Give it a name.")
        self.field = field

    def __call__(self, value: str) -> str:  # type: ignore[override]
        problem = name_problem(self.field, value)
        if problem:
            raise ValidationError(problem)
        return str(super().__call__(value))


class DestinationFieldsSchema(Schema):
    """The settings a destination is made of, as POST takes them and PATCH changes them."""

    label = fields.String(validate=[validate.Length(max=200), ShownName(LABEL_FIELD)])
    # email
    to = fields.String(
        validate=validate.Length(max=MAX_EMAIL_LENGTH, error=EMAIL_TOO_LONG),
        metadata={"description": "email: the recipient."},
    )
    # s3
    bucket = fields.String(validate=validate.Length(max=255))
    region = fields.String(validate=validate.Length(max=64))
    endpoint_url = fields.String(validate=validate.Length(max=2000), metadata={"description": "Empty for AWS."})
    prefix = fields.String(validate=validate.Length(max=500))
    path_style = JsonBoolean()
    access_key_id = fields.String(validate=validate.Length(max=200), load_only=True)
    secret_access_key = fields.String(validate=validate.Length(max=200), load_only=True)
    role_arn = fields.String(validate=validate.Length(max=2048))
    lock_mode = fields.String(
        validate=validate.OneOf(["off", *LOCK_MODES]),
        metadata={"description": "s3: lock each archive (S3 Object Lock; the bucket must have it on), or off."},
    )
    lock_days = JsonInteger(
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_LOCK_DAYS),
        metadata={"description": "s3: days each archive stays locked after delivery (with lock_mode)."},
    )


class DestinationInSchema(DestinationFieldsSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["s3", "email"]))
    # Retention: see PUT /destinations/{id}/retention, which takes the same five counts.
    retention_keep = JsonInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    retention_daily = JsonInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    retention_weekly = JsonInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    retention_monthly = JsonInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    retention_yearly = JsonInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))


class DestinationPatchSchema(DestinationFieldsSchema):
    """PATCH /destinations/{id}: the fields of POST a destination of its kind takes; a field left out is unchanged.

    Keys are write-only, as when adding: both left out keeps the stored ones;
    giving keys switches a role destination to keys, and `role_arn` drops the
    stored keys. `""` empties a plain field (e.g. `endpoint_url` back to AWS).
    Retention is changed with PUT /destinations/{id}/retention.
    """


class DestinationConfirmationSchema(Schema):
    sent = fields.Boolean(required=True, metadata={"description": "Whether a new link went out now."})
    message = fields.String(required=True, metadata={"description": "What happened, in words."})
    destination = fields.Nested(DestinationSchema, required=True)


class DestinationTestSchema(Schema):
    ok = fields.Boolean(required=True)
    message = fields.String(required=True, metadata={"description": "What worked, or what to fix."})
    destination = fields.Nested(DestinationSchema, required=True)


class TokenSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)
    active = fields.Boolean(required=True)


class NewTokenSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "The secret, shown this once."})


class TokenInSchema(Schema):
    name = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=NAME_LIMIT), ShownName(NAME_FIELD)],
    )
    expires_in_days = JsonInteger(load_default=DEFAULT_DAYS, validate=validate.Range(min=1, max=MAX_DAYS))


class OptionsSchema(Schema):
    vcard_version = fields.String(
        required=True, metadata={"enum": ["default", "3.0", "4.0"], "description": "As chosen; default: the server's."}
    )
    effective_vcard_version = fields.String(required=True, metadata={"description": "What archives use now."})
    kinds = fields.List(
        fields.String(metadata={"enum": list(KINDS)}),
        required=True,
        metadata={"description": "The kinds of data archives include; the others are left out."},
    )
    seal_key = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "The public key archives are encrypted to before delivery (age recipients, one "
            "per line, or an OpenPGP certificate); null: delivered as plain zip files."
        },
    )
    sealed_to = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "That key as people compare it, e.g. `age key age1qyqs…x7k2` or an OpenPGP "
            "fingerprint; null when archives are not encrypted."
        },
    )
    seal_problem = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "Set when the stored key can no longer be used, and why: nothing is delivered until "
            "it is given again or encryption is stopped."
        },
    )
    seal_key_expires_at = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "When the OpenPGP key expires; null: it does not (age and SSH keys never do)."},
    )
    seal_key_warning = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "Set when the key expires within 30 days (or has expired since it was given): "
            "the date and how to extend it. A key already expired when given is refused (422 `invalid_options`)."
        },
    )


class OptionsInSchema(Schema):
    """Omitted fields keep their value. The rules are `jobs.archive_options`' (a wrong value is a 422
    `invalid_options` naming the field), so the page and the API refuse the same things."""

    vcard_version = fields.String(metadata={"enum": ["default", "3.0", "4.0"]})
    kinds = fields.List(
        fields.String(metadata={"enum": list(KINDS)}),
        metadata={"minItems": 1, "description": "At least one of contacts, calendars, notes."},
    )
    seal_key = fields.String(
        allow_none=True,
        validate=validate.Length(max=65536),
        metadata={
            "description": "A public key to encrypt archives to: an age key (age1…), an SSH public key or "
            "an armored OpenPGP public key. A private key, a damaged key or one that cannot encrypt is a 422 "
            '`invalid_options` naming `seal_key`. "" or null: stop encrypting, which also revokes your live '
            "download links (they were handed out as links to encrypted files)."
        },
    )
