"""The account importer: validation with JSON paths, canonical values, all-or-nothing."""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from account.jsonio import account_from_dict, load_account, parse_account
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


def test_it_names_the_json_path_of_every_problem_in_one_pass(alice_json: dict[str, Any]) -> None:
    bad = copy.deepcopy(alice_json)
    bad["contacts"][0]["birthday"] = "1980-02-30"
    bad["contacts"][1]["emails"] = [{"types": ["home"]}]  # value missing: a schema error
    bad["calendars"][0]["events"][0]["rrule"] = "FREQ=SOMETIMES"
    bad["calendars"][0]["events"][1]["start"] = {"date": "2010-02-28", "tz": "Europe/Berlin"}
    bad["notes"][2]["attachments"][0]["data_base64"] = "not base64!"
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    # Schema errors and bad values together, in the order a reader meets them.
    assert [where for where, _ in info.value.problems] == [
        "$.contacts[0].birthday",
        "$.contacts[1].emails[0]",
        "$.calendars[0].events[0].rrule",
        "$.calendars[0].events[1].start.tz",
        "$.notes[2].attachments[0].data_base64",
    ]
    problems = dict(info.value.problems)
    assert "1980-02-30" in problems["$.contacts[0].birthday"]
    assert "'value' is a required property" in problems["$.contacts[1].emails[0]"]
    assert "RRULE" in problems["$.calendars[0].events[0].rrule"]
    assert "time zone" in problems["$.calendars[0].events[1].start.tz"]
    assert "base64" in problems["$.notes[2].attachments[0].data_base64"]


def three_problem_file(alice_json: dict[str, Any]) -> dict[str, Any]:
    """The issue's file: an impossible birthday, an event without `start`, an unknown time zone."""
    bad = copy.deepcopy(alice_json)
    bad["contacts"][0]["birthday"] = "1980-02-30"
    del bad["calendars"][0]["events"][1]["start"]
    bad["calendars"][1]["events"][0]["start"] = {"datetime": "2009-10-10T08:00:00", "tz": "Mars/Olympus"}
    return bad


THREE_PROBLEMS = [
    ("$.contacts[0].birthday", "'1980-02-30' is not a valid date (day is out of range for month)"),
    ("$.calendars[0].events[1]", "'start' is a required property"),
    ("$.calendars[1].events[0].start.tz", "'Mars/Olympus' is not a known IANA time zone (e.g. Europe/Berlin)"),
]


def test_a_missing_start_does_not_hide_a_bad_birthday_or_an_unknown_zone(alice_json: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        account_from_dict(three_problem_file(alice_json))
    assert info.value.problems == THREE_PROBLEMS
    assert str(info.value).startswith("The account file has 3 problem(s)")


def test_wrong_json_types_everywhere_are_reported_without_a_crash(alice_json: dict[str, Any]) -> None:
    bad = copy.deepcopy(alice_json)
    bad["contacts"][0]["birthday"] = 19800230
    bad["contacts"][0]["emails"] = "bob@example.com"
    bad["contacts"][1] = "not a contact"
    bad["calendars"][0]["events"][0]["start"] = "2009-10-05"
    bad["calendars"][0]["events"][0]["alarms"] = [{"trigger": 15}]
    bad["notes"][0]["body"] = None
    bad["notes"][1]["tags"] = [1, "ok"]
    bad["timezone"] = "Mars/Olympus"
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    where = [path for path, _ in info.value.problems]
    assert where == [
        "$.timezone",
        "$.contacts[0].birthday",
        "$.contacts[0].emails",
        "$.contacts[1]",
        "$.calendars[0].events[0].alarms[0].trigger",
        "$.calendars[0].events[0].start",
        "$.notes[0].body",
        "$.notes[1].tags[0]",
    ]


def test_a_file_that_is_not_an_object_is_one_problem() -> None:
    with pytest.raises(InvalidInput) as info:
        load_account(b"[1, 2]")
    assert info.value.problems == [("$", "[1, 2] is not of type 'object'")]


@pytest.mark.parametrize(
    "address",
    ["alice", "alice@", "@example.com", "alice@localhost", "alice@@example.com", "alice example@example.com",
     "alice@example", "x@attacker.test", "alice@example.com\x00", "<alice@example.com>", "a@b.com, c@d.com"],
)  # fmt: skip
def test_it_refuses_an_account_email_that_is_not_an_address(alice_json: dict[str, Any], address: str) -> None:
    bad = copy.deepcopy(alice_json)
    bad["email"] = address
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    assert [path for path, _ in info.value.problems] == ["$.email"]
    assert "is not an email address" in info.value.problems[0][1]


def test_it_keeps_a_valid_account_email_in_lower_case(alice_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(alice_json)
    doc["email"] = "  Alice.Example+Backup@Example.COM "
    assert account_from_dict(doc).email == "alice.example+backup@example.com"


def test_contact_emails_stay_free_text_as_the_schema_says(alice_json: dict[str, Any]) -> None:
    # `typed.value` has no "format": "email" in the contract: vCard EMAIL is text.
    doc = copy.deepcopy(alice_json)
    doc["contacts"][0]["emails"] = [{"value": "bob at example dot com"}]
    assert account_from_dict(doc).contacts[0].emails[0].value == "bob at example dot com"


def test_the_reserved_property_check_runs_with_no_exporter_importable(
    alice_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reserved names are part of the records contract (`account.reserved`), so the
    # check can neither be switched off nor break when the exporters are absent.
    for name in [m for m in sys.modules if m == "exporters" or m.startswith("exporters.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "exporters", None)  # any import of an exporter fails
    doc = copy.deepcopy(alice_json)
    doc["contacts"][0]["extra"] = {"NOTE": "twice"}
    with pytest.raises(InvalidInput) as caught:
        account_from_dict(doc)
    assert any(where == "$.contacts[0].extra.NOTE" for where, _ in caught.value.problems)


def test_it_refuses_values_too_long_for_some_database_with_their_path(alice_json: dict[str, Any]) -> None:
    # PostgreSQL enforces VARCHAR(n) and B-tree entry sizes; SQLite does not. Both must refuse.
    doc = copy.deepcopy(alice_json)
    doc["calendars"][0]["color"] = "#" + "0" * 64
    doc["notes"][0]["id"] = "n" * 1001
    doc["display_name"] = "A" * 501
    with pytest.raises(InvalidInput) as info:
        account_from_dict(doc)
    problems = dict(info.value.problems)
    assert set(problems) == {"$.display_name", "$.calendars[0].color", "$.notes[0].id"}
    assert "at most 64" in problems["$.calendars[0].color"]
    assert "at most 1000" in problems["$.notes[0].id"]


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
    assert account.contacts[0].note == "one\ntwo\nthree\ufffd[31m"  # NUL rule, then controls dropped
    assert account.contacts[0].nickname is None
    assert account.notes[0].body == "kept\r\nbyte for byte\x07"


def test_it_replaces_nul_in_every_text_field_and_reports_each_path(alice_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(alice_json)
    doc["display_name"] = "Alice\x00"
    doc["contacts"][0]["name"]["given"] = "B\x00b"
    doc["contacts"][0]["emails"][0]["value"] = "bob\x00@example.com"
    doc["calendars"][0]["description"] = "\x00"
    doc["calendars"][0]["events"][0]["summary"] = "Stand-up\x00"
    doc["notes"][0]["body"] = "line\x00\r\n"
    doc["notes"][2]["attachments"][0]["filename"] = "pixel\x00.png"
    loaded = parse_account(doc)
    assert loaded.replaced == (
        "$.display_name",
        "$.contacts[0].emails[0].value",
        "$.contacts[0].name.given",
        "$.calendars[0].description",
        "$.calendars[0].events[0].summary",
        "$.notes[0].body",
        "$.notes[2].attachments[0].filename",
    )
    account = loaded.account
    assert account.display_name == "Alice\ufffd"
    assert account.contacts[0].name is not None and account.contacts[0].name.given == "B\ufffdb"
    assert account.calendars[0].info.description == "\ufffd"
    assert account.notes[0].body == "line\ufffd\r\n"  # otherwise still byte for byte
    assert account.notes[2].attachments[0].filename == "pixel\ufffd.png"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(timezone="Europe/Berlin\x00"), "$.timezone"),
        (
            lambda d: d["calendars"][0]["events"][0].update(rrule="FREQ=DAILY;X-A=\x00"),
            "$.calendars[0].events[0].rrule",
        ),
        (lambda d: d["contacts"][0]["emails"][0].update(types=["home\x00"]), "$.contacts[0].emails[0].types[0]"),
        (lambda d: d["contacts"][0]["photo"].update(media_type="image/png\x00"), "$.contacts[0].photo.media_type"),
    ],
)
def test_it_refuses_nul_in_structured_values_with_the_path(alice_json: dict[str, Any], mutate: Any, path: str) -> None:
    bad = copy.deepcopy(alice_json)
    mutate(bad)
    with pytest.raises(InvalidInput) as info:
        account_from_dict(bad)
    assert [where for where, _ in info.value.problems] == [path]


def test_it_refuses_a_lone_surrogate_in_any_text_with_the_path() -> None:
    doc = b'{"email": "a@example.com", "contacts": [{"uid": "c\\ud800"}], "calendars": [], "notes": []}'
    with pytest.raises(InvalidInput) as info:
        load_account(doc)
    assert [where for where, _ in info.value.problems] == ["$.contacts[0].uid"]


def test_it_takes_utc_named_zones_as_absolute_time(alice_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(alice_json)
    doc["calendars"][1]["events"][0]["start"] = {"datetime": "2009-10-10T08:00:00", "tz": "UTC"}
    start = account_from_dict(doc).calendars[1].events[0].start
    assert start == When(datetime=dt.datetime(2009, 10, 10, 8, tzinfo=dt.UTC))
