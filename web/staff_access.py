"""Who may open the support console: staff (support or admin) who passed their second factor.

Why a flag in the session and not only the role: a staff member's password
alone must not open the console. `web/staff_auth.py` (TOTP) sets
`STAFF_VERIFIED_KEY` after the second factor; until then a staff member is
sent to it. Why `user_only`: support staff never read user content, so the
pages and API that return it refuse a staff session with 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, redirect, request, session, url_for
from flask_login import current_user

from store.staff import STAFF_ROLES

STAFF_VERIFIED_KEY = "staff_verified"
F = TypeVar("F", bound=Callable[..., Any])


def is_staff() -> bool:
    return bool(current_user.is_authenticated and getattr(current_user, "role", "user") in STAFF_ROLES)


def staff_required(*roles: str) -> Callable[[F], F]:
    """Allow signed-in staff of one of `roles` (default: support and admin) who passed TOTP."""
    allowed = roles or STAFF_ROLES

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login", next=request.full_path))
            if getattr(current_user, "role", "user") not in allowed:
                abort(403)
            if not session.get(STAFF_VERIFIED_KEY):
                return redirect(url_for("staff_auth.second_factor", next=request.full_path))
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate
