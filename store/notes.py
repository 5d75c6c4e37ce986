"""Notes with tags and attachments; the Markdown body is kept byte for byte."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.base import Base, UTCDateTime


class NoteRow(Base):
    __tablename__ = "notes"
    __table_args__ = (UniqueConstraint("user_id", "note_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    note_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    notebook: Mapped[str | None] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # `account.versions.record_digest` of the record the row was built from; None: unknown (never reused).
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    tags: Mapped[list[NoteTagRow]] = relationship(
        order_by="NoteTagRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    attachments: Mapped[list[NoteAttachmentRow]] = relationship(
        order_by="NoteAttachmentRow.position", cascade="all, delete-orphan", passive_deletes=True
    )


class NoteTagRow(Base):
    __tablename__ = "note_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)


class NoteAttachmentRow(Base):
    __tablename__ = "note_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
