"""Models and queries: users, contacts, calendars, events, notes, runs and archives.

The store knows no file formats, runs or HTTP; it hands plain records
(`account.records`) to whoever asks.
"""

from __future__ import annotations

from store.access import ApiToken, DownloadLink
from store.base import Base
from store.calendars import (
    CalendarRow,
    EventAlarmRow,
    EventAttendeeRow,
    EventCategoryRow,
    EventDateRow,
    EventOverrideRow,
    EventRow,
)
from store.contacts import ContactAddressRow, ContactCategoryRow, ContactExtraRow, ContactRow, ContactValueRow
from store.db import Database, get_db, get_fresh_session, get_session, init_app
from store.destinations import DeliveryAttempt, Destination
from store.notes import NoteAttachmentRow, NoteRow, NoteTagRow
from store.runs import ACTIVE_STATES, Archive, ExportRun, RunEvent, RunState
from store.schedules import Schedule
from store.staff import AuditEvent, BulkResendRunner, RecoveryCode
from store.users import User

__all__ = [
    "ACTIVE_STATES",
    "ApiToken",
    "Archive",
    "AuditEvent",
    "Base",
    "BulkResendRunner",
    "CalendarRow",
    "ContactAddressRow",
    "ContactCategoryRow",
    "ContactExtraRow",
    "ContactRow",
    "ContactValueRow",
    "Database",
    "DeliveryAttempt",
    "Destination",
    "DownloadLink",
    "EventAlarmRow",
    "EventAttendeeRow",
    "EventCategoryRow",
    "EventDateRow",
    "EventOverrideRow",
    "EventRow",
    "ExportRun",
    "NoteAttachmentRow",
    "NoteRow",
    "NoteTagRow",
    "RecoveryCode",
    "RunEvent",
    "RunState",
    "Schedule",
    "User",
    "get_db",
    "get_fresh_session",
    "get_session",
    "init_app",
]
