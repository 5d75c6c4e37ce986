"""Error types shared by every layer.

Why a small hierarchy: callers decide what to do by type (show it, retry it,
disable a schedule), never by parsing messages. `UserError` messages are safe
to show to the account owner and say what to fix.
"""

from __future__ import annotations


class LifeboatError(Exception):
    """Base class for errors raised on purpose by Lifeboat."""


class UserError(LifeboatError):
    """Something the user can fix; the message is safe to show them."""


class InvalidInput(UserError, ValueError):
    """Input (an import file, a form, an archive) is malformed.

    `problems` lists `(json_path_or_location, message)` pairs so one error can
    report everything wrong with a file at once.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [super().__str__()]
        lines += [f"  {where}: {what}" for where, what in self.problems]
        return "\n".join(lines)


def not_utf8(what: str, offset: int) -> str:
    """The one wording for bytes that are not UTF-8: which file (`what`), where, and the fix.

    Why one: restore, import and verify meet this in vCard, iCalendar and
    Markdown files alike, and none of them replaces bad bytes (that would change
    the data unseen); the user should read the same sentence wherever it is met.
    `offset` counts bytes from the start of the file.
    """
    return f"{what} is not UTF-8 (bad byte at offset {offset}): re-save it as UTF-8"


class DeliveryError(LifeboatError):
    """A delivery attempt failed.

    `permanent` errors (bad credentials, no such bucket, a 5xx SMTP rejection)
    will not succeed on retry: stop and tell the user `user_message`, the fix.
    Transient ones (timeouts, throttling, 5xx from S3, SMTP 4xx) are retried
    with backoff.
    """

    def __init__(
        self, message: str, *, permanent: bool, user_message: str | None = None, operator: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.user_message = user_message or message
        # The fix is the service operator's (server settings), not the user's: the user is told so.
        self.operator = operator
