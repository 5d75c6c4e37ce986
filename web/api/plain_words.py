"""marshmallow's and webargs' validation messages, said as a person would: what the field must be.

Why one mapping here rather than `error_messages` on each field: every schema,
field and validator of the API is covered at once, including ones added later,
and the project's own messages (which already say how to fix things) pass
through unchanged because they are not in it. A user trial found "_schema:
Invalid input type." and "Not a valid string." meant nothing to people.
"""

from __future__ import annotations

import re
from typing import Any

UNKNOWN_FIELD = "is not a field this request takes; the API document lists the fields"
UNKNOWN_PARAMETER = "is not a parameter this request takes; the API document lists the parameters"
NOT_JSON = 'The body is not valid JSON: send one JSON object, such as {"name": "value"}'

_EXACT = {
    "Missing data for required field.": "is required",
    "Field may not be null.": "cannot be null; give a value or leave the field out",
    "Invalid value.": "has a value this request does not take",
    "Not a valid string.": "must be text (a JSON string)",
    "Not a valid utf-8 string.": "must be text in UTF-8",
    "Not a valid integer.": "must be a whole number",
    "Not a valid number.": "must be a number",
    "Number too large.": "is too large a number",
    "Special numeric values (nan or infinity) are not permitted.": "must be a finite number",
    "Not a valid boolean.": "must be true or false",
    "Not a valid list.": "must be a list (a JSON array)",
    "Not a valid tuple.": "must be a list (a JSON array)",
    "Not a valid mapping type.": "must be a JSON object",
    "Invalid type.": "must be a JSON object",
    "Not a valid datetime.": "must be a date and time in ISO 8601, such as 2026-01-31T02:00:00Z",
    "Not a valid date.": "must be a date as YYYY-MM-DD, such as 2026-01-31",
    "Not a valid email address.": "must be an email address, such as me@example.org",
    "Not a valid URL.": "must be a URL, such as https://example.org",
    "Not a valid UUID.": "must be a UUID",
    "String does not match expected pattern.": "is not in the form the API document gives for it",
    "Invalid input.": "has a value this request does not take",
    "Unknown field.": UNKNOWN_FIELD,
    "Invalid JSON body.": NOT_JSON,
}

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\."),
        r"must be between \1 and \2",
    ),
    (re.compile(r"Must be greater than or equal to (\S+)\."), r"must be \1 or more"),
    (re.compile(r"Must be less than or equal to (\S+)\."), r"must be \1 or less"),
    (re.compile(r"Must be greater than (\S+) and less than (\S+)\."), r"must be more than \1 and less than \2"),
    (re.compile(r"Must be greater than (\S+)\."), r"must be more than \1"),
    (re.compile(r"Must be less than (\S+)\."), r"must be less than \1"),
    (re.compile(r"Length must be between 1 and (\d+)\."), r"must not be empty, and at most \1 characters long"),
    (re.compile(r"Length must be between (\d+) and (\d+)\."), r"must be \1 to \2 characters long"),
    (re.compile(r"Length must be (\d+)\."), r"must be \1 characters long"),
    (re.compile(r"Longer than maximum length (\d+)\."), r"must be at most \1 characters long"),
    (re.compile(r"Shorter than minimum length 1\."), r"must not be empty"),
    (re.compile(r"Shorter than minimum length (\d+)\."), r"must be at least \1 characters long"),
    (re.compile(r"Must be one of: (.*)\."), r"must be one of: \1"),
    (re.compile(r"Not a valid (\w+)\."), r"must be a valid \1"),
]


def plain(message: str, location: str = "json") -> str:
    """The message in the API's words; a message the project wrote itself comes back as it was."""
    if message == "Unknown field." and location in ("query", "querystring"):
        return UNKNOWN_PARAMETER
    if message in _EXACT:
        return _EXACT[message]
    for pattern, words in _PATTERNS:
        if pattern.fullmatch(message):
            return pattern.sub(words, message)
    return message


def ours(message: str) -> bool:
    """Whether the project wrote this message (it says how to fix things) rather than marshmallow or webargs."""
    return message not in _EXACT and not any(pattern.fullmatch(message) for pattern, _ in _PATTERNS)


def json_kind(value: Any) -> str:
    """What a JSON value is, as a person would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def not_an_object(got: Any) -> str:
    return f"The body must be a JSON object (got {json_kind(got)})"
