"""Models and queries: users, contacts, calendars, events, notes, runs and archives.

The store knows no file formats, runs or HTTP; it hands plain records
(`account.records`) to whoever asks.

Why the names below are loaded on first use (PEP 562 `__getattr__`) and not at
import: importing any `store.x` runs this file first, and eagerly it brought in
Flask (`store.db`) and every model, ~0.4 s CPU that a restore's second process
(`jobs.restore_worker`, which needs `store.replace` alone) paid for nothing. The
first name asked for loads all of them, exactly as before, so `Base.metadata`
seen through `store` still holds every table.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from store.destinations import DeliveryAttempt, Destination, DestinationCheck
    from store.fidelity import ExportFidelity
    from store.notes import NoteAttachmentRow, NoteRow, NoteTagRow
    from store.runs import ACTIVE_STATES, Archive, ExportRun, RunEvent, RunState
    from store.schedules import MissedRunAlert, Schedule
    from store.staff import AuditEvent, BulkResendRunner, RecoveryCode
    from store.users import User

# Where each public name is defined; the first one asked for loads them all, as the eager imports did.
_HOMES = {
    "ApiToken": "store.access",
    "DownloadLink": "store.access",
    "Base": "store.base",
    "CalendarRow": "store.calendars",
    "EventAlarmRow": "store.calendars",
    "EventAttendeeRow": "store.calendars",
    "EventCategoryRow": "store.calendars",
    "EventDateRow": "store.calendars",
    "EventOverrideRow": "store.calendars",
    "EventRow": "store.calendars",
    "ContactAddressRow": "store.contacts",
    "ContactCategoryRow": "store.contacts",
    "ContactExtraRow": "store.contacts",
    "ContactRow": "store.contacts",
    "ContactValueRow": "store.contacts",
    "Database": "store.db",
    "get_db": "store.db",
    "get_fresh_session": "store.db",
    "get_session": "store.db",
    "init_app": "store.db",
    "DeliveryAttempt": "store.destinations",
    "Destination": "store.destinations",
    "DestinationCheck": "store.destinations",
    "ExportFidelity": "store.fidelity",
    "NoteAttachmentRow": "store.notes",
    "NoteRow": "store.notes",
    "NoteTagRow": "store.notes",
    "ACTIVE_STATES": "store.runs",
    "Archive": "store.runs",
    "ExportRun": "store.runs",
    "RunEvent": "store.runs",
    "RunState": "store.runs",
    "MissedRunAlert": "store.schedules",
    "Schedule": "store.schedules",
    "AuditEvent": "store.staff",
    "BulkResendRunner": "store.staff",
    "RecoveryCode": "store.staff",
    "User": "store.users",
}

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
    "DestinationCheck",
    "DownloadLink",
    "EventAlarmRow",
    "EventAttendeeRow",
    "EventCategoryRow",
    "EventDateRow",
    "EventOverrideRow",
    "EventRow",
    "ExportFidelity",
    "ExportRun",
    "MissedRunAlert",
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


def __getattr__(name: str) -> Any:
    """Load every module of the public names on the first one asked for, then hand that one out."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    namespace = globals()
    for public, home in _HOMES.items():
        namespace[public] = getattr(importlib.import_module(home), public)
    return namespace[name]
