"""Bring user-supplied values into the canonical form that every export can carry.

Why normalise on the way in rather than on the way out: the store then holds
exactly what an archive can represent, so "import → export → restore" gives
back equal records and a second export equals the first. Each function either
returns the canonical value or raises `ValueError` with a message that says
what to fix; the importer adds the JSON path.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from icalendar.prop import vDuration, vRecur

_LINE_BREAKS = re.compile(r"\r\n|\r")
# C0 and C1 controls except TAB and LF, plus DEL: no vCard/iCalendar/YAML text can carry them.
# U+0000 is not among them: it follows the NUL rule below instead of vanishing.
_CONTROLS = re.compile(r"[\x01-\x08\x0b-\x1f\x7f\x80-\x9f]")

NUL = "\x00"
# The NUL rule (issue 11, defect 2): in every free-text field, U+0000 becomes U+FFFD.
#
# Why one rule before any database sees the text: PostgreSQL `text` refuses
# U+0000 while SQLite stores it, so the same file used to import on one and
# crash on the other. Why replace rather than refuse: a stray NUL is damage, not
# meaning (a bad copy-paste, a C string overrun in the provider's export), and
# refusing would make a whole account un-importable for one invisible character
# the user may have no way to edit. U+FFFD is what CommonMark prescribes for
# U+0000 in Markdown (section 2.3), so a note renders the same everywhere, and it
# stays visible where the damage was. Each replacement is reported by JSON path
# (see `account.jsonio.Loaded.replaced`). Structured values (zones, dates,
# rules, types, addresses) are not free text: a NUL makes them invalid, and
# they are refused with their path like any other bad value.
NUL_REPLACEMENT = "\ufffd"
_TYPE_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PROPERTY_NAME = re.compile(r"^[A-Z][A-Z0-9-]*$")
_BIRTHDAY = re.compile(r"^(\d{4}|--)-?(\d{2})-?(\d{2})$")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu", "GMT"})


_SURROGATE = re.compile("[\ud800-\udfff]")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def text(value: str) -> str:
    """Normalise line breaks to LF, apply the NUL rule and drop other controls (TAB and LF stay)."""
    _refuse_surrogates(value)
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", replace_nul(value)))


def markdown(value: str) -> str:
    """A note body: kept byte for byte, except that the NUL rule applies here too.

    Why the body gets the rule although it is otherwise untouched: a Markdown
    file must never carry a raw NUL, and the store must hold the same body on
    every database.
    """
    _refuse_surrogates(value)
    return replace_nul(value)


def replace_nul(value: str) -> str:
    """Apply the NUL rule: every U+0000 becomes U+FFFD (see `NUL_REPLACEMENT`)."""
    return value.replace(NUL, NUL_REPLACEMENT) if NUL in value else value


def _refuse_surrogates(value: str) -> None:
    # A lone surrogate is not damage inside valid text but text that is not
    # Unicode at all (no UTF-8 file, no database can hold it): refused, never replaced.
    if _SURROGATE.search(value):
        raise ValueError("contains an unpaired surrogate (invalid Unicode); re-save the file as UTF-8")


def calendar_address(value: str) -> str:
    """An organizer's or attendee's address: canonical text without a `mailto:` in front of it.

    Why: the record holds the address and the writer makes it a `mailto:` URI; an
    address given as a URI already (`mailto:b@example.com`, as calendar files
    have it) was written `mailto:mailto:b@example.com`, which no client reads as
    b@example.com. The prefix goes in any case, as often as it is repeated; an
    address of another scheme (`urn:uuid:...`) stays whole.
    """
    address = text(value)
    while address[:7].lower() == "mailto:":
        address = address[7:]
    return address


def has_controls(value: str) -> bool:
    """Whether `text` would drop anything from `value` other than line-break forms (C0/C1 controls, DEL)."""
    return _CONTROLS.search(value) is not None


def has_surrogate(value: str) -> bool:
    return _SURROGATE.search(value) is not None


# What a name people read must not hold: C0 and C1 controls (CR, LF and NUL among them), DEL, the
# line and paragraph separators, the bidirectional embeddings and overrides (U+202A to U+202E) and
# isolates (U+2066 to U+2069), and lone surrogates. Each changes what a reader sees without being seen:
# a line break fakes a second line (or a header), a right-to-left override before "gnp.exe" shows "exe.png".
_HIDDEN_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def name_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be a name shown to people, in one sentence that names `field`; None if it can.

    Why refuse rather than clean: the name is the user's own words, typed
    just now, so they can fix it, and a silently changed name is a surprise.
    For every name shown in pages, lists and the support console: API token
    names (`jobs.api_tokens`), display names (`web.account_forms`), and
    destination labels, whose forms and API should call it too. `field` is
    how the user knows the field, e.g. "The token name".
    """
    found = _HIDDEN_IN_NAMES.search(value)
    if found is None:
        return None
    return (
        f"{field} must be one line of visible text, without line breaks, control characters or "
        f"text-direction overrides (it contains U+{ord(found.group()):04X})."
    )


# email-validator's limit for a whole address (RFC 5321's 256-octet path less its angle brackets).
MAX_EMAIL_LENGTH = 254
EMAIL_TOO_LONG = f"That email address is too long (at most {MAX_EMAIL_LENGTH} characters)."


def email_address(value: str) -> str:
    """Check that `value` is one email address and return it canonical (trimmed, lower case).

    Why one function: the account's own address, an email destination's
    recipient and any later web or API form must accept and refuse exactly the
    same addresses. `email-validator` checks the syntax (RFC 5322 dot-atoms,
    internationalised domains, length limits, special-use domains such as
    `.test` or `localhost`) without DNS: deliverability is the mail server's
    answer, and this machine may have no resolver. Lower case because Lifeboat
    finds users by address case-insensitively. Letters outside ASCII before the
    `@` (`jörg@example.com`) are refused: mail to them needs SMTPUTF8, which
    Lifeboat's mail sender does not use, so such an account could never get its
    confirmation link and such a destination would fail every delivery.
    Internationalised domains are fine (they are sent in their IDNA form).
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an email address")
    if len(value.strip()) > MAX_EMAIL_LENGTH:  # said as such, and the value not echoed back (it may be huge)
        raise ValueError(EMAIL_TOO_LONG)
    # Imported here, not at the top: every writer imports this module (`is_utc_zone`, the record rules) and
    # email-validator compiles its grammar at import (~0.02 s CPU), for the few callers that check an address.
    import email_validator

    try:
        checked = email_validator.validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address ({exc})") from None
    return checked.normalized.lower()


def optional_text(value: str | None) -> str | None:
    """Canonical text, with empty strings meaning "absent"."""
    if value is None:
        return None
    cleaned = text(value)
    return cleaned or None


def type_token(value: str) -> str:
    """A TYPE parameter value such as `home`, `work`, `cell`: lower case, no separators."""
    token = value.strip().lower()
    if not _TYPE_TOKEN.match(token):
        raise ValueError(f"{value!r} is not a valid type: use letters, digits and '-' only (e.g. 'home')")
    return token


def type_tokens(values: list[str]) -> tuple[tuple[str, ...], bool]:
    """Type tokens in order, each once; `pref` is not a type but the preferred flag.

    Returns `(types, preferred)`. Raises on the first invalid token.
    """
    tokens: list[str] = []
    preferred = False
    for value in values:
        token = type_token(value)
        if token == "pref":  # noqa: S105 - a vCard TYPE value, not a password
            preferred = True
        elif token not in tokens:
            tokens.append(token)
    return tuple(tokens), preferred


def media_type(value: str) -> str:
    """A MIME type such as image/png, lower case."""
    token = value.strip().lower()
    if not _MEDIA_TYPE.match(token):
        raise ValueError(f"{value!r} is not a media type such as image/png")
    return token


def property_name(value: str) -> str:
    """A vCard property name for `extra`, e.g. `X-SPOUSE` or `RELATED`."""
    name = value.strip().upper()
    if not _PROPERTY_NAME.match(name):
        raise ValueError(f"{value!r} is not a vCard property name (letters, digits and '-', e.g. X-SPOUSE)")
    return name


def raw_value(value: str) -> str:
    """A property value kept verbatim: anything but line breaks and controls."""
    if "\n" in value or "\r" in value:
        raise ValueError("a verbatim property value cannot contain line breaks; escape them as \\n")
    return text(value)


def birthday(value: str) -> str:
    """`YYYY-MM-DD` or `--MM-DD` (year unknown), validated as a real calendar date."""
    m = _BIRTHDAY.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a date: use YYYY-MM-DD, or --MM-DD when the year is unknown")
    year, month, day = m.groups()
    check_year = 2000 if year == "--" else int(year)  # 2000 is a leap year: --02-29 is valid
    try:
        dt.date(check_year, int(month), int(day))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date ({exc})") from None
    return f"--{month}-{day}" if year == "--" else f"{year}-{month}-{day}"


def timestamp(value: str) -> dt.datetime:
    """An ISO 8601 instant (created/updated) as aware UTC, whole seconds.

    A value without offset is taken as UTC: these are server timestamps.
    """
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time such as 2009-10-01T08:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(microsecond=0)


def timezone_name(value: str) -> str:
    """An IANA zone name that this machine's zone database knows."""
    name = value.strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known IANA time zone (e.g. Europe/Berlin)") from None
    return name


def is_utc_zone(name: str) -> bool:
    return name in _UTC_NAMES


def rrule(value: str) -> str:
    """An RFC 5545 RRULE value in the text form the iCalendar library writes."""
    raw = value.strip()
    if _CONTROLS.search(raw) or NUL in raw or "\n" in raw or "\t" in raw:
        raise ValueError(f"{value!r} is not a valid RRULE: it contains control characters")
    if raw.upper().startswith("RRULE:"):
        raw = raw[6:]
    try:
        parsed = vRecur.from_ical(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a valid RRULE (e.g. FREQ=WEEKLY;BYDAY=MO): {exc}") from None
    if "FREQ" not in parsed:
        raise ValueError(f"{value!r} is not a valid RRULE: FREQ is missing")
    text: str = parsed.to_ical().decode()
    return text


def duration(value: str) -> str:
    """An RFC 5545 duration such as -PT15M, in the text form the iCalendar library writes."""
    try:
        parsed = vDuration.from_ical(value.strip())
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not an RFC 5545 duration such as -PT15M or P1D") from None
    text: str = vDuration(parsed).to_ical().decode()  # vDuration is unannotated
    return text


def upper_token(value: str) -> str:
    """Status, role, partstat and similar enumerations are upper case."""
    if NUL in value:
        raise ValueError(f"{value!r} contains U+0000; give one word such as ACCEPTED")
    token = text(value).strip().upper()
    if not token or any(ch in token for ch in ';:,"\n\t'):
        raise ValueError(f"{value!r} is not a valid value (one word such as ACCEPTED)")
    return token
