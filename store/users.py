"""Accounts that sign in, and whose data Lifeboat holds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_support: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    data_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Bumped by sign-out and password change: every session cookie carrying an older
    # value stops working at once (cookies are client-side, so they cannot be deleted).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "3.0" or "4.0" for this user's archives; None means the server's LIFEBOAT_VCARD_VERSION.
    vcard_version: Mapped[str | None] = mapped_column(String(8))
    # Set when the owner of the address followed the confirmation link (sign-up); None: not yet.
    email_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Which kinds this user's archives hold, comma-separated from "contacts,calendars,notes";
    # None means all of them (the default, and what every archive held before the option).
    export_kinds: Mapped[str | None] = mapped_column(String(64))
    # user, support or admin (store.staff.ROLES). Staff hold no data of their own in the console.
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")
    # The TOTP secret (encrypted with the instance's keys, like destination secrets), and when
    # the staff member proved their authenticator shows its codes; until then it is not in force.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The public key (age recipients or an OpenPGP certificate) archives are encrypted to before
    # they leave (`delivery.sealing`); None: delivered as plain zips. Public, so stored as given.
    seal_key: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"
