"""Names the writers reserve for themselves, which a record's free-form `extra` must not repeat.

Why in the records contract: the importer (`account.jsonio`) refuses an `extra`
property the vCard writer writes itself (it would come out twice and read back
differently), and the writer and reader use the same names. Keeping them here
lets the account layer check records without importing any exporter.
"""

from __future__ import annotations

CREATED_PROPERTY = "X-LIFEBOAT-CREATED"  # a contact's creation time (vCard has only REV)

RESERVED_VCARD_PROPERTIES: frozenset[str] = frozenset(
    {
        "BEGIN", "END", "VERSION", "UID", "FN", "N", "NICKNAME", "ORG", "TITLE", "ROLE",
        "EMAIL", "TEL", "ADR", "LABEL", "URL", "IMPP", "BDAY", "ANNIVERSARY", "X-ANNIVERSARY",
        "CATEGORIES", "NOTE", "PHOTO", "REV", CREATED_PROPERTY,
    }
)  # fmt: skip
