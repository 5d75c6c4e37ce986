"""Contacts, one column or child row per schema field (no opaque blobs)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.base import Base, UTCDateTime


class ContactRow(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("user_id", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    uid: Mapped[str] = mapped_column(Text)
    formatted_name: Mapped[str | None] = mapped_column(Text)
    name_family: Mapped[str | None] = mapped_column(Text)
    name_given: Mapped[str | None] = mapped_column(Text)
    name_additional: Mapped[str | None] = mapped_column(Text)
    name_prefix: Mapped[str | None] = mapped_column(Text)
    name_suffix: Mapped[str | None] = mapped_column(Text)
    nickname: Mapped[str | None] = mapped_column(Text)
    organization: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    birthday: Mapped[str | None] = mapped_column(String(10))
    anniversary: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    photo_media_type: Mapped[str | None] = mapped_column(String(255))
    photo_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # `account.versions.record_digest` of the record the row was built from; None: unknown (never reused).
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    values: Mapped[list[ContactValueRow]] = relationship(
        order_by="ContactValueRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    addresses: Mapped[list[ContactAddressRow]] = relationship(
        order_by="ContactAddressRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    categories: Mapped[list[ContactCategoryRow]] = relationship(
        order_by="ContactCategoryRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    extra: Mapped[list[ContactExtraRow]] = relationship(
        order_by="ContactExtraRow.position", cascade="all, delete-orphan", passive_deletes=True
    )


class ContactValueRow(Base):
    """An email, phone, URL or chat handle (`kind`), with its type tokens."""

    __tablename__ = "contact_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # email, phone, url, impp
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)
    # Canonical type tokens are [a-z0-9_-]+, so a space-separated list is lossless.
    types: Mapped[str] = mapped_column(Text, default="")
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)


class ContactAddressRow(Base):
    __tablename__ = "contact_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    types: Mapped[str] = mapped_column(Text, default="")
    po_box: Mapped[str | None] = mapped_column(Text)
    extended: Mapped[str | None] = mapped_column(Text)
    street: Mapped[str | None] = mapped_column(Text)
    locality: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)


class ContactCategoryRow(Base):
    __tablename__ = "contact_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)


class ContactExtraRow(Base):
    """A vCard property Lifeboat does not model (X-..., RELATED, ...), kept verbatim."""

    __tablename__ = "contact_extra"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
