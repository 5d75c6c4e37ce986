"""The README.txt at the top of every archive: what is inside and what to do with it.

Why plain text with menu paths: the person opening this may be years away from
Lifeboat, on a new phone or a borrowed laptop. They need to know which folder
holds what, how to get it into the programs they already use, and how to check
nothing is damaged, without installing anything.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from exporters.archive.changes import SECTION as CHANGES
from exporters.archive.counts import KIND_COUNTS, KINDS, counts_line
from exporters.archive.manifest import CHECKSUMS_NAME, MANIFEST_NAME, SIGNATURE_NAME, Manifest

if TYPE_CHECKING:  # cryptography (~0.012 s CPU to import) is for the code that signs or checks alone
    from exporters.archive.signature import PublicKey

# "What is inside", one entry per kind the archive holds (`_body`), then the files every archive has.
_INSIDE = {
    "contacts": """\
  contacts/contacts.vcf   Your whole address book in one vCard {vcard} file:
                          this is the one to import.
  contacts/cards/         The same contacts, one .vcf file each.
""",
    "calendars": """\
  calendars/              One iCalendar (.ics) file per calendar.
""",
    "notes": """\
  notes/                  One Markdown (.md) file per note, in folders named
                          after your notebooks. The exact title, tags and dates
                          are at the top of each file between two '---' lines.
                          A note's attachments are in the "<note>.assets"
                          folder beside it.
""",
}
# A kind the archive holds but the account had none of: no "the one to import" for an empty file.
_EMPTY = {
    "contacts": """\
  contacts/contacts.vcf   Empty: the account had no contacts when this archive
                          was made, so there is nothing to import.
""",
    "calendars": """\
  calendars/              No calendars: the account had none when this archive
                          was made.
""",
    "notes": """\
  notes/                  No notes: the account had none when this archive was
                          made.
""",
}
_ALWAYS = """\
  {manifest:<23} Every file in this archive with its size and SHA-256.
  {checksums:<23} The same SHA-256 fingerprints, as sha256sum reads them.
"""
# How to use each kind, for the kinds the archive holds.
_HOW = {
    "contacts": """
Contacts (contacts/contacts.vcf)
  Google Contacts:  contacts.google.com > Import > select the .vcf file.
  Apple Contacts:   File > Import..., choose the .vcf file (for an iPhone,
                    import it at icloud.com/contacts and let it sync).
  Thunderbird:      Tools > Import... > Address Books > vCard file.
""",
    "calendars": """
Calendars (calendars/*.ics)
  Google Calendar:  Settings > Import & export > Import, choose the .ics file
                    and the calendar to add it to.
  Apple Calendar:   File > Import..., choose the .ics file.
  Outlook:          File > Open & Export > Import/Export > "Import an
                    iCalendar (.ics) or vCalendar file"; on the web:
                    Add calendar > Upload from file.
""",
    "notes": """
Notes (notes/)
  Obsidian:         "Open folder as vault" and pick the notes folder.
  Any editor:       the .md files are plain UTF-8 text.
""",
}
_CHECKING = """
Checking that nothing is missing or damaged
  Unzip the archive, open a terminal in the unzipped folder and run
    Linux:    sha256sum -c {checksums}
    macOS:    shasum -a 256 -c {checksums}
    Windows:  Get-FileHash -Algorithm SHA256 <file>   (in PowerShell; compare
              with that file's value in {manifest})
  Every file must be reported OK. With Lifeboat installed, this checks the
  ZIP itself without unzipping it:
    lifeboat verify <archive>.zip
  The SHA-256 of the whole ZIP is shown in Lifeboat and in the delivery
  message; compare it with the output of: sha256sum <archive>.zip
"""


_SIGNED = """
Checking that nobody changed it
  {signature} is the service's Ed25519 signature over {manifest}.
  Made with the key
    {key_id}  {public_key}
  which the Lifeboat that made it publishes at
    <its address>/.well-known/lifeboat-signing-keys.json
  This checks the checksums and the signature:
    lifeboat verify <archive>.zip
"""


def readme_text(
    vcard_version: str = "3.0", *, manifest: Manifest | None = None, signing_key: PublicKey | None = None
) -> str:
    """Render README.txt; with `manifest`, it also names the owner, the time and the counts.

    With `signing_key`, it names the key that signs the archive's manifest.json.
    """
    lines = ["Lifeboat archive"]
    if manifest is not None:
        if manifest.email:
            lines[0] += f" for {manifest.email}"
        lines.append(f"Created {manifest.created_at:%Y-%m-%d %H:%M} UTC by {manifest.generator}.")
    copy = f"This ZIP is your own copy of your {_and(_kinds(manifest))}, in open formats that other programs "
    lines += ["", *textwrap.wrap(copy + "read directly. Nothing in it needs Lifeboat.", 74)]
    counts = manifest.counts if manifest is not None else {}
    if counts:
        # The same words as `export`, `verify`, `restore` and the pages ("1,004 events in 2 calendars").
        lines.append(f"It holds {counts_line(counts, _kinds(manifest))}.")
    changed = _changes_count(manifest)
    if changed is not None:
        lines += _changes_lines(changed, _changes_by_field(manifest))
    left_out = _left_out(manifest)
    if left_out:
        lines += [
            "",
            f"Left out, as chosen in the archive options: {' and '.join(left_out)}.",
            "Their folders are not in this archive; change the options to include them again.",
        ]
    lines.append("")
    empty = {kind for kind in KINDS if counts and not any(counts.get(key) for key in KIND_COUNTS[kind])}
    body = _body(vcard_version, _kinds(manifest), empty)
    if signing_key is not None:
        body += _SIGNED.format(
            signature=SIGNATURE_NAME,
            manifest=MANIFEST_NAME,
            key_id=signing_key.key_id,
            public_key=signing_key.base64,
        )
    return "\n".join(lines) + "\n" + body


def _and(kinds: list[str]) -> str:
    """`contacts, calendars and notes`, `notes`, `contacts and notes`."""
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


def _body(vcard_version: str, kinds: list[str], empty: set[str]) -> str:
    """Write "What is inside" and how to use each kind, for the kinds the archive holds alone (user trial 7).

    Why: an archive of contacts alone listed calendars/ and notes/ as inside it,
    and an empty address book was "the one to import". `empty`: the kinds held
    but of which the account had nothing.
    """
    inside = "".join(_EMPTY[kind] if kind in empty else _INSIDE[kind].format(vcard=vcard_version) for kind in kinds)
    how = "".join(_HOW[kind] for kind in kinds if kind not in empty)
    return (
        "What is inside\n"
        + inside
        + _ALWAYS.format(manifest=MANIFEST_NAME, checksums=CHECKSUMS_NAME)
        + how
        + _CHECKING.format(checksums=CHECKSUMS_NAME, manifest=MANIFEST_NAME)
    )


def _changes_count(manifest: Manifest | None) -> int | None:
    """How many changes the manifest's `changes` section lists; None without one (archives made before it)."""
    section = manifest.meta.get(CHANGES) if manifest is not None else None
    count = section.get("count") if isinstance(section, dict) else None
    return count if type(count) is int else None


def _changes_lines(count: int, by_field: Counter[str]) -> list[str]:
    """What README.txt says of the changes: the manifest's count, and what one change is.

    Why the breakdown: a note whose title and notebook were both renamed is two
    changes, a file name and a folder; counting them as "file names" made the
    README disagree with what the manifest lists.
    """
    if count == 0:
        return ["Nothing had to be changed to fit every system."]
    files, folders = by_field.get("file name", 0), by_field.get("folder", 0)
    parts = [f"{files:,} file name{'s' * (files != 1)}"] if files else []
    if folders:
        parts.append(f"{folders:,} note's folder" if folders == 1 else f"{folders:,} notes' folders")
    if parts and count - files - folders > 0:
        parts.append(f"{count - files - folders:,} other name{'s' * (count - files - folders != 1)}")
    what = f": {' and '.join(parts)}" if parts else ""
    each = "it" if count == 1 else f"all {count:,}"
    return [
        f"{count:,} change{'s' * (count != 1)} had to be made to fit every system{what}.",
        "Each is one file or folder name that is not exactly as typed; the exact",
        f'names stay inside the files. {MANIFEST_NAME} lists {each} under "changes",',
        "with the name as typed and the reason.",
    ]


def _changes_by_field(manifest: Manifest | None) -> Counter[str]:
    """How many of the manifest's changes rename a file and how many a note's folder (`field`).

    The items are the encoded entries as the manifest will hold them (`ChangeLog.encoded`) while
    an archive is written, or parsed entries; an archive made before the section has none.
    """
    section = manifest.meta.get(CHANGES) if manifest is not None else None
    items = section.get("items") if isinstance(section, dict) else None
    fields: Counter[str] = Counter()
    if not isinstance(items, Iterable) or isinstance(items, str | bytes):
        return fields
    for item in items:
        entry = json.loads(item) if isinstance(item, str) else item
        if isinstance(entry, dict) and isinstance(entry.get("field"), str):
            fields[entry["field"]] += 1
    return fields


def _kinds(manifest: Manifest | None) -> list[str]:
    """The kinds the archive holds (every kind for archives made before the option)."""
    left_out = _left_out(manifest)
    return [kind for kind in KINDS if kind not in left_out]


def _left_out(manifest: Manifest | None) -> list[str]:
    """The kinds the manifest's `kinds` omits (none for archives made before the option)."""
    kinds = manifest.meta.get("kinds") if manifest is not None else None
    if not isinstance(kinds, list):
        return []
    return [kind for kind in KINDS if kind not in kinds]
