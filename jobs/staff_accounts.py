"""Staff accounts: create them, change roles, deactivate, and their second factor (TOTP, recovery codes).

Why here (jobs) and not in the web: the command line (`users create`) and the
admin page create staff through the same functions, so both refuse the same
inputs and write the same audit rows. Every change an admin makes is written
with its audit row in the caller's write transaction (`jobs.audit.record`).

Why the last accepted TOTP time step is read back from the audit trail: a code
is valid for its whole 30-second step (and one step either side, for clocks
that drift), so someone who watched it being typed could use it again. The
step of every successful sign-in is kept in that sign-in's audit row, which is
written anyway, so refusing a replay costs one indexed query and no new column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from account.canonical import email_address
from delivery.secrets import SecretBox
from errors import UserError
from jobs.api_tokens import revoke_user_tokens
from jobs.audit import Actor, record
from jobs.destination_backends import secret_box
from jobs.support_actions import check_reason, check_request_key
from store import AuditEvent, User
from store.accounts import find_user
from store.passwords import end_sessions, hash_password, password_problem
from store.staff import ROLES, STAFF_ROLES, RecoveryCode

ISSUER = "Lifeboat"
RECOVERY_CODES = 10
TOTP_STEP_SECONDS = 30
SIGN_IN = "sign_in"


class StaffError(UserError):
    """A staff change that cannot be made; the message says why and what to do instead."""


# ---- accounts ---------------------------------------------------------------------------------------


def checked_email(value: str) -> str:
    """The canonical address, or StaffError naming the problem."""
    try:
        return email_address(value)
    except ValueError:
        raise StaffError(f"{value!r} is not one email address, such as name@example.com.") from None


def checked_role(role: str, allowed: tuple[str, ...] = STAFF_ROLES) -> str:
    if role not in allowed:
        raise StaffError(f"Unknown role {role!r}: choose one of {', '.join(allowed)}.")
    return role


def create_staff(
    session: Session,
    actor: Actor,
    email: str,
    role: str,
    *,
    password: str | None,
    reason: str,
    now: dt.datetime,
    request_key: str | None = None,
) -> User:
    """A new support or admin account (audited). With no password, the person chooses one by a reset link.

    An address that already has an account is refused rather than promoted: a
    user's account holds their data, and a staff account must hold none
    (`set_role` exists for a deliberate, audited change).
    """
    address = checked_email(email)
    checked_role(role)
    reason, request_key = check_reason(reason), check_request_key(request_key)
    if password is not None and (problem := password_problem(password)):
        raise StaffError(problem)
    existing = find_user(session, address)
    if existing is not None:
        raise StaffError(
            f"{address} already has an account (role {existing.role}); "
            "change it deliberately with `users set-role EMAIL --role ROLE --reason WHY`."
        )
    user = User(
        email=address,
        role=role,
        is_support=True,
        email_confirmed_at=now,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    detail = {"role": role}
    record(session, actor, "create_staff", now=now, target=user, reason=reason, detail=detail, request_key=request_key)
    return user


def set_role(session: Session, actor: Actor, email: str, role: str, *, reason: str, now: dt.datetime) -> User:
    """Change an account's role (audited); the person's sessions and API tokens end so the new role applies at once."""
    checked_role(role, ROLES)
    if not reason.strip():
        raise StaffError("Say why the role changes (--reason): it goes into the audit log.")
    reason = check_reason(reason)
    user = find_user(session, checked_email(email))
    if user is None:
        raise StaffError(f"No account {email!r}. Create staff with `users create EMAIL --role support|admin`.")
    before = user.role
    user.role = role
    user.is_support = role in STAFF_ROLES
    if role not in STAFF_ROLES:
        user.totp_secret = None
        user.totp_confirmed_at = None
    end_sessions(user)
    # A token made for one role must not carry another: a user's own token would otherwise open the
    # support API on promotion, unaudited and without a second factor (and a staff token a user's API).
    revoked = revoke_user_tokens(session, user.id, now=now) if role != before else 0
    detail = {"from": before, "to": role, "api_tokens_revoked": revoked}
    record(session, actor, "set_role", now=now, target=user, reason=reason, detail=detail)
    return user


def deactivate(
    session: Session, actor: Actor, user_id: int, *, reason: str, now: dt.datetime, request_key: str | None = None
) -> User:
    """Close a staff account (audited): it can no longer sign in, and its sessions end at once."""
    reason, request_key = check_reason(reason), check_request_key(request_key)
    user = session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise StaffError("There is no such staff account.")
    if actor.user_id == user.id:
        raise StaffError("You cannot deactivate your own account; ask another admin.")
    user.is_active = False
    end_sessions(user)
    record(session, actor, "deactivate_staff", now=now, target=user, reason=reason, request_key=request_key)
    return user


@dataclass(frozen=True)
class StaffRow:
    """One staff account as the admin page lists it."""

    id: int
    email: str
    role: str
    active: bool
    totp_enrolled: bool
    last_sign_in: dt.datetime | None


def list_staff(session: Session) -> list[StaffRow]:
    """Every support and admin account, admins first, with their last successful sign-in."""
    last = (
        select(AuditEvent.actor_id, func.max(AuditEvent.at).label("at"))
        .where(AuditEvent.action == SIGN_IN, AuditEvent.outcome == "ok")
        .group_by(AuditEvent.actor_id)
        .subquery()
    )
    rows = session.execute(
        select(User, last.c.at)
        .outerjoin(last, last.c.actor_id == User.id)
        .where(User.role.in_(STAFF_ROLES))
        .order_by(User.role, User.email)
    )
    return [
        StaffRow(user.id, user.email, user.role, user.is_active, user.totp_confirmed_at is not None, at)
        for user, at in rows
    ]


def refuse_staff_data(session: Session, email: str) -> None:
    """Staff hold no data of their own: importing, restoring or a demo account for one is refused."""
    user = find_user(session, email)
    if user is not None and user.role in STAFF_ROLES:
        raise StaffError(
            f"{user.email} is {with_article(user.role)} account: staff accounts hold no contacts, calendars or notes."
        )


# ---- second factor ----------------------------------------------------------------------------------


NO_KEYS = (
    "Staff cannot enrol an authenticator: this server has no LIFEBOAT_ENCRYPTION_KEYS (second-factor secrets "
    "are stored encrypted). Set it (see docs/deployment.md) and restart."
)


def _box(config: Mapping[str, Any]) -> SecretBox:
    box = secret_box(dict(config))
    if box is None:
        raise StaffError(NO_KEYS)
    return box


def require_second_factor_keys(config: Mapping[str, Any]) -> None:
    """Refuse to make a staff account the server could not enrol (checked before, not at first sign-in)."""
    _box(config)


def enrolment_secret(session: Session, config: dict[str, Any], user: User) -> str:
    """The secret to enrol (made and stored encrypted on first use, so a reload shows the same QR code)."""
    if user.totp_confirmed_at is not None:
        raise StaffError("Your authenticator is already enrolled.")
    box = _box(config)
    if user.totp_secret:
        return box.decrypt(user.totp_secret)
    secret = pyotp.random_base32()
    user.totp_secret = box.encrypt(secret)
    return secret


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code `code` is (this one, or one either side for drifting clocks), else None."""
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), digits):
            return candidate
    return None


def _last_step(session: Session, user_id: int) -> int:
    details = session.scalars(
        select(AuditEvent.detail)
        .where(AuditEvent.actor_id == user_id, AuditEvent.action == SIGN_IN, AuditEvent.outcome == "ok")
        .order_by(AuditEvent.id.desc())
        .limit(5)
    )
    steps = [json.loads(detail or "{}").get("totp_step") for detail in details]
    return max((step for step in steps if isinstance(step, int)), default=-1)


@dataclass(frozen=True)
class Verdict:
    """How a second-factor attempt ended: `ok`, and for the audit row how (method) or why not (why)."""

    ok: bool
    method: str = ""
    why: str = ""
    step: int | None = None

    def detail(self) -> dict[str, Any]:
        found: dict[str, Any] = {"method": self.method} if self.method else {}
        if self.why:
            found["why"] = self.why
        if self.step is not None:
            found["totp_step"] = self.step
        return found


def check_totp(session: Session, config: dict[str, Any], user: User, code: str, now: dt.datetime) -> Verdict:
    """Check a code against the user's secret (enrolled or being enrolled), refusing a replayed one."""
    if not user.totp_secret:
        return Verdict(False, why="no authenticator enrolled")
    step = _matching_step(_box(config).decrypt(user.totp_secret), code, now)
    if step is None:
        return Verdict(False, method="totp", why="wrong code")
    if step <= _last_step(session, user.id):
        return Verdict(False, method="totp", why="code already used")
    return Verdict(True, method="totp", step=step)


def confirm_enrolment(session: Session, user: User, now: dt.datetime) -> list[str]:
    """Put the authenticator in force and issue fresh recovery codes (returned once, stored as SHA-256)."""
    user.totp_confirmed_at = now
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(old)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_sha256=_digest(code), created_at=now) for code in codes)
    return codes


def use_recovery_code(session: Session, user: User, code: str, now: dt.datetime) -> Verdict:
    """Accept an unused recovery code of the user's, once."""
    found = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_sha256 == _digest(code),
            RecoveryCode.used_at.is_(None),
        )
    )
    if found is None:
        return Verdict(False, method="recovery code", why="unknown or used recovery code")
    found.used_at = now
    return Verdict(True, method="recovery code")


def recovery_codes_left(session: Session, user_id: int) -> int:
    return int(
        session.scalar(select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0
    )


def looks_like_recovery_code(code: str) -> bool:
    return "-" in code or len("".join(code.split())) > 6


def _new_recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits each, and only good once behind the code throttle
    return f"{raw[:5]}-{raw[5:]}"


def _digest(code: str) -> str:
    normal = "".join(code.split()).lower()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def with_article(role: str) -> str:
    """ "an admin", "a support": a role as the middle of a sentence says it."""
    return f"{'an' if role[:1].lower() in 'aeiou' else 'a'} {role}"
