"""The independent check parses big files in pieces without losing an item or a structural error.

Why: `flask verify` must stay within memory on a large account, so `exporters.archive.check`
streams each calendar and address book and parses calendars in runs of events and cards one
at a time. These tests shrink the run length so that many run boundaries fall inside small files.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from typing import Any

import icalendar
import pytest
from ical.calendar_stream import IcsCalendarStream

from account.sample import TYPICAL, generate_account
from exporters.archive import check
from exporters.archive.check_parts import Share, Steps
from exporters.ical.writer import iter_calendar, zones_used
from exporters.vcard.writer import iter_vcards

STAMP = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)  # export time: DTSTAMP of events without one


@pytest.fixture(scope="module")
def account() -> Any:
    return generate_account("check@example.com", TYPICAL, seed=3)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "CHUNK", 7)


def calendar_bytes(account: Any, events: int = 120) -> bytes:
    calendar = account.calendars[0]
    chosen = calendar.events[:events]
    zones = set().union(*(zones_used(e) for e in chosen))
    return b"".join(iter_calendar(calendar.info, chosen, zones, stamp=STAMP))


def lines(data: bytes) -> list[str]:
    return [line.decode() for line in io.BytesIO(data)]


def test_a_calendar_checked_in_chunks_counts_each_event_once_and_keeps_overrides_with_their_series(
    account: Any, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = calendar_bytes(account)
    chunks: list[str] = []
    original = IcsCalendarStream.calendar_from_ics

    def recorded(text: str) -> Any:
        chunks.append(text)
        return original(text)

    monkeypatch.setattr(IcsCalendarStream, "calendar_from_ics", recorded)
    whole = len(icalendar.Calendar.from_ical(data).walk("VEVENT"))
    overrides = data.count(b"\r\nRECURRENCE-ID")
    assert overrides and whole > 100
    # 120 events as the store holds them; each moved occurrence is part of its event (exporters.archive.counts).
    assert check._check_calendar(lines(data)) == (120, overrides) and whole == 120 + overrides
    assert len(chunks) > whole // 8
    for text in chunks:
        parsed = icalendar.Calendar.from_ical(text)
        masters = {str(e["UID"]) for e in parsed.walk("VEVENT") if "RECURRENCE-ID" not in e}
        moved = {str(e["UID"]) for e in parsed.walk("VEVENT") if "RECURRENCE-ID" in e}
        assert moved <= masters
        assert parsed.walk("VTIMEZONE") or b"BEGIN:VTIMEZONE" not in data  # every chunk has the zones


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d + b"BEGIN:VEVENT\r\n", "after END:VCALENDAR"),
        (lambda d: d.replace(b"END:VCALENDAR\r\n", b""), "ends inside|no END:VCALENDAR"),
        (lambda d: d.replace(b"BEGIN:VCALENDAR\r\n", b"", 1), "does not start"),
        (lambda d: d[: d.rindex(b"END:VEVENT")] + b"END:VCALENDAR\r\n", "ends inside a VEVENT"),
        (lambda d: d.replace(b"END:VEVENT\r\nBEGIN:VEVENT", b"END:VEVENT\r\nX-STRAY:1\r\nBEGIN:VEVENT", 1), "between"),
    ],
)
def test_a_damaged_calendar_frame_is_reported(account: Any, small_chunks: None, damage: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check._check_calendar(lines(damage(calendar_bytes(account, events=20))))


def test_an_address_book_checked_card_by_card_counts_every_card(account: Any) -> None:
    data = b"".join(iter_vcards(account.contacts))
    counted = check._check_cards(lines(data), Share(), Steps(), check._CardMemo())
    assert counted == len(account.contacts) == 200


def test_a_stray_line_between_cards_is_reported(account: Any) -> None:
    cards = list(iter_vcards(account.contacts[:3]))
    data = cards[0] + b"NOT A CARD\r\n" + b"".join(cards[1:])
    with pytest.raises(ValueError, match="outside a VCARD"):
        check._check_cards(lines(data), Share(), Steps(), check._CardMemo())


def test_the_verify_report_writes_every_figure_with_thousands_separated() -> None:
    report = check.Report(
        files=Counter({"vcf": 3_001, "ics": 2}),
        items=Counter({"cards": 3_000, "address-book cards": 3_000, "events": 1_004, "changed occurrences": 1_200}),
    )
    summary = report.summary()
    assert "  files checked: 2 ics, 3,001 vcf\n" in summary
    assert "the same 3,000 cards again" in summary
    assert "1,004 events in 2 calendars" in summary and "(1,200 such, 2,204 VEVENTs in all)" in summary
