"""A check this process's own endpoint settings refused: the operator's to fix, and never recorded for the user.

Why: S3 endpoints on private or loopback addresses are reached only when
LIFEBOAT_ENDPOINT_ALLOW_LIST allows them, and a command run from a shell
without the server's settings is refused where the server is not. That refusal
says nothing about the user's bucket and is nothing the user can fix, so it is
told to the operator in one line naming the setting, and stored nowhere the
user reads. User trials: `lifeboat scrub` (trial 8) and `lifeboat destination
test` (trial 9) each stored "error" on a destination that worked, and the
user's pages said "not working" until the next delivery.
"""

from __future__ import annotations

from delivery.s3.addresses import EndpointNotAllowedError

REFUSED_HERE = "refused here"  # a finding's state (`jobs.scrub`): never stored
SETTING = "LIFEBOAT_ENDPOINT_ALLOW_LIST"  # the setting that decides it (`config.py`)


def refusal(exc: BaseException | None) -> str | None:
    """The refusal's first sentence ("Refusing to connect to H: it is …") if this process's endpoint policy
    refused; else None. The rest of the guard's words is advice for the user, not for the operator."""
    if isinstance(exc, EndpointNotAllowedError):
        return exc.user_message.split(". ", 1)[0].rstrip(".")
    return None


def for_the_operator(detail: str, command: str) -> str:
    """What the operator is told: the refusal, the setting, and to run `command` with the server's settings."""
    return (
        f"{detail}, which this process's {SETTING} does not allow. "
        f"Run {command} with the server's settings ({SETTING} as the server has it)."
    )
