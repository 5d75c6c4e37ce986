"""What the archive email says: subject, plain text and HTML, from a payload.

Why separate from the MIME building: the wording is for people (counts in
words, sizes in binary units, how to check the SHA-256) and changes for
reasons of its own; every user-controlled string in it is cleaned here.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address

from delivery.contract import Payload
from delivery.email.headers import clean_text, safe_filename
from delivery.sealing import plain_name

_COUNT_ORDER = ("contacts", "address_books", "calendars", "events", "tasks", "notes", "attachments")
_SINGULAR = {"address_books": "address book", "entries": "entry"}


def human_size(size: int) -> str:
    """Say a size the way file managers do (binary units), for people, not for checks."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def counted(counts: Mapping[str, int]) -> list[str]:
    """Say "12 contacts", "1 calendar", ... in a stable order, known kinds first."""
    keys = [k for k in _COUNT_ORDER if k in counts]
    keys += sorted(str(k) for k in counts if k not in _COUNT_ORDER)
    parts = []
    for key in keys:
        n, plural = int(counts[key]), clean_text(str(key).replace("_", " "), limit=40)
        singular = _SINGULAR.get(key, plural.removesuffix("s"))
        parts.append(f"{n:,} {singular if n == 1 else plural}")
    return parts


@dataclass(frozen=True)
class Summary:
    """What the email says, computed once; user-controlled strings are already cleaned."""

    name: str
    filename: str
    size: int
    sha256: str
    created: str
    counts: list[str]
    attached: bool
    reason: str
    url: str | None
    manifest: bool
    sealed_to: str = ""  # set: the archive is encrypted to this key (no counts are said then)
    plain_sha256: str = ""
    decrypt_hint: str = ""
    # Set when the mail goes to an address the owner chose, not their own: then the text
    # speaks to that recipient about this owner ("Zoë (zoe@example.org)"), never greets them as the owner.
    owner: str = ""

    @classmethod
    def of(cls, payload: Payload, to: Address, *, attached: bool, reason: str, own: bool = True) -> Summary:
        owner = ""
        if not own:
            name, address = clean_text(payload.user_display_name, limit=100), clean_text(payload.user_email, limit=254)
            owner = f"{name} ({address})" if name else address
        return cls(
            name=clean_text(to.display_name) if own else "",
            owner=owner,
            filename=safe_filename(payload.filename),
            size=payload.size,
            sha256=payload.sha256.lower(),
            created=payload.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            counts=counted(payload.counts),
            attached=attached,
            reason=reason,
            url=None if attached else payload.download_url,
            manifest=bool(payload.manifest),
            sealed_to=clean_text(payload.sealed_to, limit=200),
            plain_sha256=payload.plain_sha256.lower(),
            decrypt_hint=clean_text(payload.decrypt_hint, limit=300),
        )

    def subject(self) -> str:
        inside = "encrypted to your key" if self.sealed_to else ", ".join(self.counts) or "no items"
        who = f" from {self.owner}" if self.owner else f" for {self.name}" if self.name else ""
        return clean_text(f"Lifeboat archive{who}, {self.created[:10]}: {inside}", limit=250)

    def verify_lines(self) -> list[str]:
        if self.sealed_to:
            return self._sealed_lines()
        manifest = "manifest.json (attached)" if self.manifest else "the manifest.json inside"
        name = self.filename
        return [
            f"File:    {name}",
            f"Size:    {human_size(self.size)} ({self.size:,} bytes)",
            f"SHA-256: {self.sha256}",
            "",
            "To check that your copy is intact, compare the SHA-256 above with the output of:",
            f"  Linux:    sha256sum {name}",
            f"  macOS:    shasum -a 256 {name}",
            f"  Lifeboat: lifeboat verify {name}",
            f"The last one also checks every file inside against {manifest},",
            "which lists each file's SHA-256 and size.",
        ]

    def _sealed_lines(self) -> list[str]:
        """How to open and check a sealed archive; the link's download is sealed anew, so its digest differs."""
        plain = plain_name(self.filename)
        whose = "their" if self.owner else "your"
        lines = [f"It is encrypted to {whose} {self.sealed_to}: only {whose} private key opens it.", ""]
        if self.attached:
            lines += [
                f"File:    {self.filename}",
                f"Size:    {human_size(self.size)} ({self.size:,} bytes)",
                f"SHA-256: {self.sha256} (the encrypted file)",
            ]
        lines += [
            "",
            "To open it:",
            f"  {self.decrypt_hint}",
            f"The decrypted {plain} has SHA-256 {self.plain_sha256}; to check it and every file inside:",
            f"  lifeboat verify {plain} --expect {self.plain_sha256}",
        ]
        return lines

    def _intro(self) -> str:
        """The first sentence: "Here is your ... archive", or who asked to send it to this recipient."""
        encrypted = "encrypted " if self.sealed_to else ""
        if self.owner:
            return f"{self.owner} asked Lifeboat to send you a copy of their {encrypted}archive from {self.created}."
        return f"Here is your {encrypted}Lifeboat archive from {self.created}."

    def _inside(self) -> list[str]:
        if self.sealed_to:  # what it holds stays inside the ciphertext
            return [self._intro(), ""]
        lines = [f"{self._intro()} Inside:", ""]
        return [*lines, *[f"  - {part}" for part in self.counts or ["no items"]], ""]

    def text(self) -> str:
        lines = [f"Hello {self.name}," if self.name else "Hello,", ""]
        lines += self._inside()
        if self.attached:
            lines.append(f"The archive is attached as {self.filename}.")
        else:
            lines += [
                f"The archive is not attached because {self.reason}.",
                "Download it here (the link expires, so download it soon):",
                f"  {self.url}",
            ]
        return "\n".join([*lines, "", *self.verify_lines(), ""])

    def html(self) -> str:
        e = html.escape
        greeting = f"Hello {self.name}," if self.name else "Hello,"
        items = "".join(f"<li>{e(part)}</li>" for part in self.counts or ["no items"])
        inside = (
            f"<p>{e(self._intro())}</p>" if self.sealed_to else f"<p>{e(self._intro())} Inside:</p><ul>{items}</ul>"
        )
        if self.attached:
            where = f"<p>The archive is attached as <code>{e(self.filename)}</code>.</p>"
        else:
            url = self.url or ""
            is_web = url.startswith(("https://", "http://"))
            link = f'<a href="{e(url)}">{e(url)}</a>' if is_web else e(url)
            where = (
                f"<p>The archive is not attached because {e(self.reason)}. "
                f"Download it here (the link expires, so download it soon):<br>{link}</p>"
            )
        return (
            f"<!DOCTYPE html><html><body><p>{e(greeting)}</p>"
            f"{inside}{where}<pre>{e(chr(10).join(self.verify_lines()))}</pre>"
            "</body></html>\n"
        )
