"""The account importer: validation with JSON paths, canonical values, all-or-nothing."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from account.jsonio import account_from_dict, load_account
from account.records import When
from errors import InvalidInput

SHARED_SAMPLE = Path(__file__).parents[3] / "shared" / "samples" / "alice.json"


def test_the_bundled_sample_matches_the_shared_one(alice_json: dict[str, Any]) -> None:
    if not SHARED_SAMPLE.exists():
        pytest.skip("../shared is not beside this checkout")
    assert json.loads(SHARED_SAMPLE.read_text("utf-8")) == alice_json


def test_it_reads_every_hard_case_of_alice(alice_json: dict[str, Any]) -> None:
    account = account_from_dict(alice_json)
    bob, taro, bare = account.contacts
    assert bob.name is not None and bob.name.family == "Müller"
    assert [e.types for e in bob.emails] == [("work",), ("home",)]
    assert bob.emails[0].preferred and not bob.emails[1].preferred
    assert bob.photo is not None and bob.photo.data.startswith(b"\x89PNG")
    assert bob.extra == {"X-SPOUSE": "Carol"}
    assert bob.created == dt.datetime(2009, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert taro.birthday == "--12-24"
    assert bare.formatted_name == "No Name Fields" and bare.name is None
    weekly = account.calendars[0].events[0]
    assert weekly.start == When(datetime=dt.datetime(2009, 10, 5, 9, 0), tz="Europe/Berlin")
    assert weekly.rrule == "FREQ=WEEKLY;COUNT=10;BYDAY=MO"
    assert weekly.overrides[0].recurrence_id.tz == "Europe/Berlin"
    flight = account.calendars[0].events[2]
    assert flight.end == When(datetime=dt.datetime(2009, 11, 2, 12, 15, tzinfo=dt.UTC))  # -05:00 made UTC
    floating = account.calendars[1].events[0]
    assert floating.start.is_floating
    assert [n.title for n in account.notes[:2]] == ["Shopping list", "Shopping list"]
    assert account.notes[2].attachments[0].data.startswith(b"\x89PNG")


def test_it_names_the_json_path_of_every_problem(alice_json: dict[str, Any]) -> None:
    bad = copy.deepcopy(alice_json)
    bad["contacts"][0]["birthday"] = "1980-02-30"
    bad["contacts"][1]["emails"] = [{"types": ["home"]}]  # value missing
    bad["calendars"][0]["events"][0]["rrule"] = "FREQ=SOMETIMES"
    bad["calendars"][0]["events"][1]["start"] = {"date": "2010-02-28", "tz": "Europe/Berlin"}
    bad["notes"][2]["attachments"][0]["data_base64"] = "not base64!"
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    # Structural problems are reported first, all at once.
    assert [where for where, _ in info.value.problems] == ["$.contacts[1].emails[0]"]
    del bad["contacts"][1]["emails"]
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    problems = dict(info.value.problems)
    assert "1980-02-30" in problems["$.contacts[0].birthday"]
    assert "RRULE" in problems["$.calendars[0].events[0].rrule"]
    assert "time zone" in problems["$.calendars[0].events[1].start.tz"]
    assert "base64" in problems["$.notes[2].attachments[0].data_base64"]


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["contacts"].append({"uid": "c-0001"}), "$.contacts[3].uid", "duplicates"),
        (lambda d: d.update(timezone="Mars/Olympus"), "$.timezone", "IANA"),
        (lambda d: d["contacts"][0]["emails"][0].update(types=["wo rk"]), "$.contacts[0].emails[0].types[0]", "type"),
        (lambda d: d["contacts"][0]["extra"].update({"X-BAD": "a\nb"}), "$.contacts[0].extra.X-BAD", "line breaks"),
        (
            lambda d: d["calendars"][0]["events"][2].update(end={"date": "2009-11-02"}),
            "$.calendars[0].events[2].end",
            "both",
        ),
        (
            lambda d: d["calendars"][0]["events"][0]["alarms"][0].update(trigger="15 minutes"),
            "$.calendars[0].events[0].alarms[0].trigger",
            "duration",
        ),
    ],
)
def test_it_rejects_bad_values_with_a_message_that_says_what_to_fix(
    alice_json: dict[str, Any], mutate: Any, path: str, words: str
) -> None:
    bad = copy.deepcopy(alice_json)
    mutate(bad)
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert words in problems[path]


def test_it_reports_invalid_json_with_line_and_column() -> None:
    with pytest.raises(InvalidInput) as info:
        load_account(b'{"email": "a@example.com",\n "contacts": [}')
    assert info.value.problems[0][0] == "line 2, column 15"


def test_it_normalises_hostile_text_into_canonical_form(alice_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(alice_json)
    doc["contacts"][0]["note"] = "one\r\ntwo\rthree\x00\x07\x1b[31m\u0085"
    doc["contacts"][0]["nickname"] = ""
    doc["notes"][0]["body"] = "kept\r\nbyte for byte\x07"
    account = account_from_dict(doc)
    assert account.contacts[0].note == "one\ntwo\nthree[31m"
    assert account.contacts[0].nickname is None
    assert account.notes[0].body == "kept\r\nbyte for byte\x07"


def test_it_takes_utc_named_zones_as_absolute_time(alice_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(alice_json)
    doc["calendars"][1]["events"][0]["start"] = {"datetime": "2009-10-10T08:00:00", "tz": "UTC"}
    start = account_from_dict(doc).calendars[1].events[0].start
    assert start == When(datetime=dt.datetime(2009, 10, 10, 8, tzinfo=dt.UTC))
