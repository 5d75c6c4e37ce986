"""Put a whole account into the store, and stream it back out as records.

Why streaming: an export of 10,000 contacts with photos must not load them all
at once. `AccountReader` yields records in batches (`yield_per`) with their
child rows loaded by `selectinload`, and computes per-calendar zone sets with
one query so the iCalendar writer can emit each VTIMEZONE up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import delete, func, select, union
from sqlalchemy.orm import Session, selectinload

from account.records import Account, CalendarInfo, Contact, Event, Note
from store import mapping
from store.base import utcnow
from store.calendars import CalendarRow, EventDateRow, EventOverrideRow, EventRow
from store.contacts import ContactRow
from store.notes import NoteAttachmentRow, NoteRow
from store.users import User

BATCH = 500


def get_or_create_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        user = User(email=email.strip().lower())
        session.add(user)
        session.flush()
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def replace_account(session: Session, account: Account) -> User:
    """Create the user if needed and replace all their data with `account`, in the caller's transaction."""
    user = get_or_create_user(session, account.email)
    user.display_name = account.display_name
    user.timezone = account.timezone
    for model in (ContactRow, CalendarRow, NoteRow):
        session.execute(delete(model).where(model.user_id == user.id))
    session.add_all(mapping.contact_row(c, user.id, i) for i, c in enumerate(account.contacts))
    for position, calendar in enumerate(account.calendars):
        append_calendar(session, user, calendar.info, calendar.events, position)
    session.add_all(mapping.note_row(n, user.id, i) for i, n in enumerate(account.notes))
    user.data_updated_at = utcnow()
    session.flush()
    return user


def append_calendar(
    session: Session, user: User, info: CalendarInfo, events: tuple[Event, ...], position: int
) -> CalendarRow:
    row = mapping.calendar_row(info, user.id, position)
    session.add(row)
    session.flush()
    for start in range(0, len(events), BATCH):
        session.add_all(
            mapping.event_row(e, row.id, start + i) for i, e in enumerate(events[start : start + BATCH])
        )
        session.flush()
    return row


@dataclass(frozen=True)
class Counts:
    contacts: int
    calendars: int
    events: int
    notes: int
    attachments: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class AccountReader:
    """Read one user's data as records, streaming; what `exporters.bundle` consumes."""

    def __init__(self, session: Session, user: User) -> None:
        self.session = session
        self.user = user

    def counts(self) -> Counts:
        uid = self.user.id
        s = self.session
        return Counts(
            contacts=s.scalar(select(func.count()).select_from(ContactRow).where(ContactRow.user_id == uid)) or 0,
            calendars=s.scalar(select(func.count()).select_from(CalendarRow).where(CalendarRow.user_id == uid)) or 0,
            events=s.scalar(
                select(func.count()).select_from(EventRow).join(CalendarRow).where(CalendarRow.user_id == uid)
            )
            or 0,
            notes=s.scalar(select(func.count()).select_from(NoteRow).where(NoteRow.user_id == uid)) or 0,
            attachments=s.scalar(
                select(func.count()).select_from(NoteAttachmentRow).join(NoteRow).where(NoteRow.user_id == uid)
            )
            or 0,
        )

    def contacts(self) -> Iterator[Contact]:
        query = (
            select(ContactRow)
            .where(ContactRow.user_id == self.user.id)
            .order_by(ContactRow.position)
            .options(
                selectinload(ContactRow.values),
                selectinload(ContactRow.addresses),
                selectinload(ContactRow.categories),
                selectinload(ContactRow.extra),
            )
            .execution_options(yield_per=BATCH)
        )
        for row in self.session.scalars(query):
            yield mapping.contact_record(row)

    def calendars(self) -> list[tuple[int, CalendarInfo]]:
        rows = self.session.scalars(
            select(CalendarRow).where(CalendarRow.user_id == self.user.id).order_by(CalendarRow.position)
        )
        return [(row.id, mapping.calendar_info(row)) for row in rows]

    def events(self, calendar_id: int) -> Iterator[Event]:
        query = (
            select(EventRow)
            .where(EventRow.calendar_id == calendar_id)
            .order_by(EventRow.position)
            .options(
                selectinload(EventRow.dates),
                selectinload(EventRow.overrides),
                selectinload(EventRow.attendees),
                selectinload(EventRow.alarms),
                selectinload(EventRow.categories),
            )
            .execution_options(yield_per=BATCH)
        )
        for row in self.session.scalars(query):
            yield mapping.event_record(row)

    def zones(self, calendar_id: int) -> list[str]:
        """Every IANA zone any event, date or override of the calendar uses, sorted."""
        events = select(EventRow.id).where(EventRow.calendar_id == calendar_id).scalar_subquery()
        tz_columns = [
            select(EventRow.start_tz.label("tz")).where(EventRow.calendar_id == calendar_id),
            select(EventRow.end_tz).where(EventRow.calendar_id == calendar_id),
            select(EventDateRow.tz).where(EventDateRow.event_id.in_(events)),
            select(EventOverrideRow.recurrence_id_tz).where(EventOverrideRow.event_id.in_(events)),
            select(EventOverrideRow.start_tz).where(EventOverrideRow.event_id.in_(events)),
            select(EventOverrideRow.end_tz).where(EventOverrideRow.event_id.in_(events)),
        ]
        found = self.session.scalars(select(union(*tz_columns).subquery().c.tz)).all()
        return sorted(tz for tz in found if tz)

    def notes(self) -> Iterator[Note]:
        query = (
            select(NoteRow)
            .where(NoteRow.user_id == self.user.id)
            .order_by(NoteRow.position)
            .options(selectinload(NoteRow.tags), selectinload(NoteRow.attachments))
            .execution_options(yield_per=BATCH)
        )
        for row in self.session.scalars(query):
            yield mapping.note_record(row)

    def account(self) -> Account:
        """The whole account in memory (tests and small accounts only)."""
        from account.records import Calendar

        return Account(
            email=self.user.email,
            display_name=self.user.display_name,
            timezone=self.user.timezone,
            contacts=tuple(self.contacts()),
            calendars=tuple(Calendar(info, tuple(self.events(cid))) for cid, info in self.calendars()),
            notes=tuple(self.notes()),
        )
