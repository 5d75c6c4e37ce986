"""One warning for CLI commands that mail links while LIFEBOAT_BASE_URL is unset.

Why: `serve` points BASE_URL at where it listens (`cli.follow_listener`), but a
CLI command runs apart from it, so with LIFEBOAT_BASE_URL unset every link it
mails names the default http://127.0.0.1:5000 (user trials: a destination
link, then the scrub alert, while the service ran on port 5077).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask import current_app

from config import BY_NAME, is_set
from jobs.context import JobContext

_F = TypeVar("_F", bound=Callable[..., Any])


def default_address_in_use() -> bool:
    """Whether links are built from BASE_URL's default because nobody chose an address."""
    return not is_set("BASE_URL") and current_app.config["BASE_URL"] == BY_NAME["BASE_URL"].default


def warn_of_the_default_address(links: str = "the link points", then: str = ", then send the link again") -> None:
    """One line on stderr when links are built from BASE_URL's default, which may not be where Lifeboat is."""
    if not default_address_in_use():
        return
    click.echo(
        f"Note: LIFEBOAT_BASE_URL is not set, so {links} at the default address {BY_NAME['BASE_URL'].default}; "
        f"set LIFEBOAT_BASE_URL to the address people reach Lifeboat at{then}.",
        err=True,
    )


def warn_when_mailing(ctx: JobContext) -> None:
    """Make the first mail with links this command sends through `ctx` print the warning, once.

    Covers what a command mails through the job context: notices such as the
    scrub alert (`send_notice`, False when no mail server is set) and failure
    notices (`notify_failure`). Nothing is printed when the address was chosen,
    or when nothing was mailed. Not covered: the download link an archive email
    carries instead of a too-large archive (the link is made for every email
    destination in case, so making it says nothing of whether it was mailed).
    """
    if not default_address_in_use():
        return
    warned = [False]

    def once() -> None:
        if not warned[0]:
            warned[0] = True
            warn_of_the_default_address("links in the email it sent point", "")

    def watched(send: _F, mailed: Callable[[Any], bool]) -> _F:
        @functools.wraps(send)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = send(*args, **kwargs)
            if mailed(result):
                once()
            return result

        return call  # type: ignore[return-value]  # the same signature as `send`

    smtp_host = bool(current_app.config.get("SMTP_HOST"))
    ctx.send_notice = watched(ctx.send_notice, lambda sent: sent is not False)
    ctx.notify_failure = watched(ctx.notify_failure, lambda _none: smtp_host)
