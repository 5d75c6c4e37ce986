"""The directly joined vCard lines are byte-for-byte what the vobject component writer produced.

Why a differential test: `exporters.vcard.writer` stopped building a `vobject.vCard` per
contact for speed. Every other vCard test proves the output is right; this one proves
the rewrite changed nothing, against the previous writer kept as an oracle
(`tests.formats.vcard_oracle`), in both versions, for canonical contacts, for contacts
that skipped canonicalisation (raw text in every field: controls, lone surrogates,
CR/LF, quotes, carets, odd extra property names) and for alice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Address, Blob, Contact, Name, Typed
from account.sample import TYPICAL, generate_account
from exporters.vcard.writer import contact_to_vcard
from tests.formats import vcard_oracle
from tests.profiles import examples
from tests.strategies.contacts import contacts

ALICE = Path(__file__).parent.parent / "data" / "alice.json"
SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
VERSIONS = st.sampled_from(["3.0", "4.0"])

# Any code point, surrogates and controls included: what a record that skipped the importer may hold.
raw = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
some = st.none() | raw
raw_typed = st.builds(Typed, value=raw, types=st.lists(raw, max_size=2).map(tuple), preferred=st.booleans())
raw_address = st.builds(
    Address,
    street=some,
    locality=some,
    region=some,
    postal_code=some,
    country=some,
    po_box=some,
    extended=some,
    label=some,
    types=st.lists(raw, max_size=2).map(tuple),
    preferred=st.booleans(),
)


@st.composite
def raw_contacts(draw: st.DrawFn) -> Contact:
    """A contact whose text fields are replaced by arbitrary strings."""
    contact = draw(contacts())
    return dataclasses.replace(
        contact,
        uid=draw(raw) or "uid",
        formatted_name=draw(some),
        name=draw(st.none() | st.builds(Name, family=some, given=some, additional=some, prefix=some, suffix=some)),
        nickname=draw(some),
        organization=draw(some),
        department=draw(some),
        note=draw(some),
        emails=tuple(draw(st.lists(raw_typed, max_size=2))),
        urls=tuple(draw(st.lists(raw_typed, max_size=2))),
        addresses=tuple(draw(st.lists(raw_address, max_size=2))),
        birthday=draw(some | st.sampled_from(["--02-29", "1990-13-01", "2001-02-03"])),
        categories=tuple(draw(st.lists(raw, max_size=3))),
        photo=draw(st.none() | st.builds(Blob, media_type=raw, data=st.binary(max_size=200))),
        extra=draw(st.dictionaries(raw | st.sampled_from(["X-FOO", "x-bar", "RELATED"]), raw, max_size=3)),
        created=draw(st.none() | st.datetimes(timezones=st.none() | st.just(dt.UTC))),
    )


@SETTINGS
@given(contacts(), VERSIONS)
def test_canonical_contacts_are_written_exactly_as_the_vobject_writer_wrote_them(
    contact: Contact, version: str
) -> None:
    assert contact_to_vcard(contact, version) == vcard_oracle.contact_to_vcard(contact, version)


@SETTINGS
@given(raw_contacts(), VERSIONS)
def test_hostile_uncanonical_contacts_are_written_exactly_as_the_vobject_writer_wrote_them(
    contact: Contact, version: str
) -> None:
    assert contact_to_vcard(contact, version) == vcard_oracle.contact_to_vcard(contact, version)


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_alice_and_a_generated_account_are_written_exactly_as_the_vobject_writer_wrote_them(version: str) -> None:
    accounts = [
        account_from_dict(json.loads(ALICE.read_text("utf-8"))),
        generate_account("typical@example.com", TYPICAL, seed=7),
    ]
    checked = 0
    for account in accounts:
        for contact in account.contacts:
            assert contact_to_vcard(contact, version) == vcard_oracle.contact_to_vcard(contact, version), contact.uid
            checked += 1
    assert checked > 200
