"""Signed manifests (issue 16): a changed archive is refused even when its checksums were made to agree.

The archive here is small and made in memory with a key of its own, so a
thousand corruptions take seconds; tests/unit/test_signing_cli.py drives the
same checks through `lifeboat verify` and the service's own keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import random
import zipfile
from collections import Counter
from collections.abc import Callable

import pytest

from exporters.archive.manifest import (
    MANIFEST_NAME,
    README_NAME,
    RESERVED_NAMES,
    SIGNATURE_NAME,
    ArchiveError,
    parse_manifest,
)
from exporters.archive.reader import open_archive, verify_archive
from exporters.archive.signature import (
    KeyRing,
    SigningKey,
    new_signing_keys,
    parse_signing_keys,
    rotated,
    statement,
)
from exporters.archive.writer import Entry, write_archive

NOW = dt.datetime(2026, 12, 7, 4, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 12, 7)
FILES = {
    "contacts/contacts.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nEND:VCARD\r\n",
    "notes/Inbox/groceries.md": b"---\ntitle: Groceries\n---\nmilk, eggs, " + b"bread " * 40 + b"\n",
    "notes/Inbox/plans.md": b"---\ntitle: Plans\n---\nsail on Sunday\n",
}
META = {"user": "ada@example.com", "counts": {"contacts": 1, "notes": 2}}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return parse_signing_keys(new_signing_keys(DAY))


def _archive(signer: SigningKey | None, files: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    entries = [Entry(path, [data]) for path, data in (files or FILES).items()]
    write_archive(out, entries, META, NOW, signer=signer)
    return out.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _consistent_rewrite(data: bytes, path: str, content: bytes, signer: SigningKey | None = None) -> bytes:
    """`data` with `path` replaced and manifest.json and SHA256SUMS made to match; the old signature kept.

    With `signer`, the rewrite is signed again with that (foreign) key instead.
    """
    members = _members(data)
    files = {name: members[name] for name in members if name not in RESERVED_NAMES}
    files[path] = content
    rewritten = _members(_archive(signer, files))
    if signer is None:
        rewritten[SIGNATURE_NAME] = members[SIGNATURE_NAME]
    return _zip(rewritten)


def _refusal(data: bytes, keys: KeyRing) -> str | None:
    """What `verify --require-signature` says is wrong with `data`; None when it passes."""
    try:
        verify_archive(io.BytesIO(data), keys=keys, require_signature=True)
    except ArchiveError as exc:
        return str(exc)
    return None


def test_a_consistent_rewrite_of_a_signed_archive_is_refused_in_words_that_say_so(key: SigningKey) -> None:
    signed = _archive(key)
    forged = _consistent_rewrite(signed, "notes/Inbox/plans.md", b"---\ntitle: Plans\n---\nsell the boat\n")
    with pytest.raises(ArchiveError) as refused:
        verify_archive(io.BytesIO(forged), keys=key.ring)
    assert str(refused.value).startswith(f"manifest.json is not what the service signed (key {key.public.key_id})")
    assert "the archive was changed after it was made" in str(refused.value)
    # The same edit passes every checksum: only the signature tells.
    unsigned = _members(forged)
    del unsigned[SIGNATURE_NAME]
    verify_archive(io.BytesIO(_zip(unsigned)))  # consistent checksums: accepted without a signature
    with open_archive(io.BytesIO(_zip(unsigned)), keys=key.ring) as archive:
        assert archive.signature.status == "unsigned"


def test_the_signature_holds_even_without_the_key_set_when_the_manifest_was_rewritten(key: SigningKey) -> None:
    forged = _consistent_rewrite(_archive(key), "contacts/contacts.vcf", b"BEGIN:VCARD\r\nFN:Eve\r\nEND:VCARD\r\n")
    with pytest.raises(ArchiveError, match="is not what the service signed"):
        verify_archive(io.BytesIO(forged))  # no key set: the signature names another manifest.json


def test_a_signature_made_over_another_manifest_is_refused_for_a_known_key(key: SigningKey) -> None:
    members = _members(_archive(key))
    signature = json.loads(members[SIGNATURE_NAME])
    other = hashlib.sha256(b"another manifest").hexdigest()
    signature["signature"] = json.loads(key.signature_member(other))["signature"]  # a real signature, wrong text
    members[SIGNATURE_NAME] = json.dumps(signature).encode()
    reason = _refusal(_zip(members), key.ring)
    assert reason is not None and "does not hold" in reason and "changed after it was made" in reason


def test_a_signed_archive_is_the_same_bytes_for_the_same_input_and_key(key: SigningKey) -> None:
    assert _archive(key) == _archive(key)
    members = _members(_archive(key))
    assert list(members)[-2:] == [MANIFEST_NAME, SIGNATURE_NAME]
    signature = json.loads(members[SIGNATURE_NAME])
    digest = hashlib.sha256(members[MANIFEST_NAME]).hexdigest()
    assert signature["manifest_sha256"] == digest and signature["key_id"] == key.public.key_id
    # What is signed is documented, so anyone can check it with any Ed25519 tool.
    assert key.public.verifies(base64.b64decode(signature["signature"]), statement(digest))
    assert SIGNATURE_NAME not in {f.path for f in parse_manifest(members[MANIFEST_NAME]).files}


def test_the_readme_names_the_signing_key_and_how_to_check(key: SigningKey) -> None:
    readme = _members(_archive(key))[README_NAME].decode()
    assert f"{key.public.key_id}  {key.public.base64}" in readme
    assert "lifeboat verify <archive>.zip" in readme and "/.well-known/lifeboat-signing-keys.json" in readme
    assert key.public.key_id not in _members(_archive(None))[README_NAME].decode()


def test_no_user_file_may_take_the_signatures_name(key: SigningKey) -> None:
    with pytest.raises(ArchiveError, match="reserves"):
        write_archive(io.BytesIO(), [Entry("Manifest.JSON.sig", [b"x"])], META, NOW, signer=key)


def test_an_unsigned_archive_verifies_on_its_checksums_and_says_it_is_unsigned(key: SigningKey) -> None:
    with open_archive(io.BytesIO(_archive(None)), keys=key.ring) as archive:
        assert archive.signature.status == "unsigned"
        assert archive.signature.line().startswith("unsigned: ")
    assert "unsigned" in (_refusal(_archive(None), key.ring) or "")  # unless a signature is required


def test_a_foreign_archive_verifies_on_its_checksums_and_names_the_unknown_key(key: SigningKey) -> None:
    foreign = parse_signing_keys(new_signing_keys(DAY))
    with open_archive(io.BytesIO(_archive(foreign)), keys=key.ring) as archive:
        assert archive.signature.status == "unknown-key"
        assert f"signed by key {foreign.public.key_id}, which this key set does not know" in archive.signature.line()


def test_an_archive_signed_by_a_rotated_out_key_still_verifies_against_the_published_key_set() -> None:
    text = new_signing_keys(DAY)
    first = parse_signing_keys(text)
    old_archive = _archive(first)
    text = rotated(text, DAY + dt.timedelta(days=30))
    text = rotated(text, DAY + dt.timedelta(days=60))  # rotated out twice over
    current = parse_signing_keys(text)
    assert current.public.key_id != first.public.key_id
    published = json.loads(json.dumps(current.ring.as_json()))  # as the well-known URL serves it
    ring = KeyRing.from_json(published)
    entry = next(k for k in published["keys"] if k["key_id"] == first.public.key_id)
    assert entry["retired"] == "2027-01-06" and entry["created"] == "2026-12-07"
    with open_archive(io.BytesIO(old_archive), keys=ring) as archive:
        assert archive.signature.status == "valid" and archive.signature.key_id == first.public.key_id
    assert "ed25519-private" not in json.dumps(published) and text.count("ed25519-private") == 1
    # The new key signs new archives; a rewrite of the old one is still refused.
    with open_archive(io.BytesIO(_archive(current)), keys=ring) as archive:
        assert archive.signature.key_id == current.public.key_id
    forged = _consistent_rewrite(old_archive, "notes/Inbox/plans.md", b"changed\n")
    assert "is not what the service signed" in (_refusal(forged, ring) or "")


# ---- 1,000 random corruptions ----------------------------------------------------------------------


def _flip(data: bytes, rng: random.Random) -> bytes:
    changed = bytearray(data)
    changed[rng.randrange(len(changed))] ^= 1 << rng.randrange(8)
    return bytes(changed)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _swap(data: bytes, rng: random.Random) -> bytes:
    members = _members(data)
    a, b = rng.sample([name for name in members if name != SIGNATURE_NAME], 2)
    members[a], members[b] = members[b], members[a]
    return _zip(members)


def _rewrite(data: bytes, rng: random.Random, foreign: SigningKey) -> bytes:
    path = rng.choice(sorted(FILES))
    content = FILES[path] + rng.randbytes(rng.randrange(1, 8))
    how = rng.randrange(3)
    if how == 0:  # the old signature kept
        return _consistent_rewrite(data, path, content)
    if how == 1:  # signed again with a key the service never published
        return _consistent_rewrite(data, path, content, signer=foreign)
    members = _members(_consistent_rewrite(data, path, content))
    del members[SIGNATURE_NAME]  # the signature removed
    return _zip(members)


def test_a_thousand_random_corruptions_of_a_signed_archive_are_all_detected(key: SigningKey) -> None:
    """Bit flips, truncations, member swaps and consistent rewrites: `verify --expect --require-signature`.

    Every corruption changes the file, so the receipt's SHA-256 (`--expect`)
    refuses each one; the point is what the archive alone proves. Every
    truncation, swap and rewrite is refused by the checksums and the signature
    with no digest at all. A bit flip that the archive alone lets pass must
    have touched zip bookkeeping only (a timestamp, a version field): every
    member still reads back, with zipfile too, as the very bytes that were signed.
    """
    original = _archive(key)
    receipt = hashlib.sha256(original).hexdigest()
    assert _refusal(original, key.ring) is None
    foreign = parse_signing_keys(new_signing_keys(DAY))
    rng = random.Random(16)
    kinds: dict[str, Callable[[bytes, random.Random], bytes]] = {
        "bit flip": _flip,
        "truncation": _truncate,
        "member swap": _swap,
        "consistent rewrite": lambda data, rng: _rewrite(data, rng, foreign),
    }
    made: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for _ in range(1000):
        kind = rng.choice(sorted(kinds))
        corrupted = kinds[kind](original, rng)
        assert corrupted != original, kind
        made[kind] += 1
        assert hashlib.sha256(corrupted).hexdigest() != receipt  # what --expect checks first
        if _refusal(corrupted, key.ring) is not None:
            refused[kind] += 1
            continue
        assert kind == "bit flip", f"a {kind} passed verification"
        assert _members(corrupted) == _members(original)  # bookkeeping only: the signed bytes are all intact
    assert sum(made.values()) == 1000 and min(made.values()) > 200
    for kind in ("truncation", "member swap", "consistent rewrite"):
        assert refused[kind] == made[kind], kind
    assert refused["bit flip"] > 0.8 * made["bit flip"]
