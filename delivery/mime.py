"""Build the archive email as bytes, with the archive itself streamed from disk.

Why a placeholder instead of `add_attachment(data)`: the library would hold a
15 MiB archive as bytes, then as a 20 MiB base64 string, then in every
flattened copy (and `smtplib` adds two more while dot-stuffing). Here the
message is flattened with a unique token where the archive's base64 goes;
`StreamedMessage.chunks()` yields the head, the archive encoded 57 KiB at a
time straight from the file, then the tail. The file is read once, and hashed
while it is read, so a file that changed since it was verified is caught
before the message is complete.

Why the header check after flattening: `delivery.headers` already neutralises
user text (see there for the Python 3.11.7 encoded-word injection), but a
future library quirk must never become a delivered `Bcc:`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

from delivery.base import Payload
from delivery.headers import clean_text, safe_filename

CHUNK = 57 * 1024  # a multiple of 57 bytes, so every chunk is whole 76-character base64 lines
LINE = 76
POLICY = email_policy.SMTP  # CRLF line endings, headers folded at 78 characters
HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
)
_COUNT_ORDER = ("contacts", "address_books", "calendars", "events", "tasks", "notes", "attachments")
log = logging.getLogger(__name__)
_SINGULAR = {"address_books": "address book", "entries": "entry"}


class ArchiveChangedError(Exception):
    """The file on disk is not the verified archive; the message must not be completed."""


class UnsafeHeadersError(Exception):
    """The flattened message does not carry exactly the headers that were set."""


class UnsafeAddressError(UnsafeHeadersError):
    """An address header does not read back as exactly the addresses that were set."""


@dataclass(frozen=True)
class StreamedMessage:
    """A flattened message whose archive part (if any) is streamed from `archive`."""

    head: bytes
    tail: bytes = b""
    archive: Path | None = None
    archive_size: int = 0
    archive_sha256: str = ""

    @property
    def size(self) -> int:
        """Bytes on the wire before dot-stuffing, for the SMTP SIZE extension."""
        encoded = 4 * -(-self.archive_size // 3) if self.archive else 0
        breaks = 2 * max(-(-encoded // LINE) - 1, 0)
        return len(self.head) + encoded + breaks + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        """Yield the message; raise `ArchiveChangedError` before the tail if the file differs."""
        yield self.head
        if self.archive is not None:
            digest, size = hashlib.sha256(), 0
            with self.archive.open("rb") as file:
                while block := file.read(CHUNK):
                    digest.update(block)
                    encoded = base64.b64encode(block)
                    lines = b"\r\n".join(encoded[i : i + LINE] for i in range(0, len(encoded), LINE))
                    yield (b"\r\n" if size else b"") + lines
                    size += len(block)
            if size != self.archive_size or digest.hexdigest() != self.archive_sha256.lower():
                raise ArchiveChangedError
        yield self.tail


def build_message(payload: Payload, sender: Address, to: Address, *, attach: bool, reason: str) -> StreamedMessage:
    """Flatten the archive email; `reason` says why the archive is not attached, if it is not.

    If an address header does not read back as exactly `sender` and `to` (Python
    3.11.7 refolds a long display name such as `Bcc: x@evil.example; xxx…`
    without its quotes, so `To:` reads back as a group plus a second address),
    the message is built again without display names: the mail still reaches
    exactly the intended person, only without their name. If even that does
    not read back right, `UnsafeHeadersError`: nothing is sent.
    """
    tries = [(sender, to), (sender, _bare(to)), (_bare(sender), _bare(to))]
    tries = [pair for n, pair in enumerate(tries) if pair not in tries[:n]]
    for n, (from_, to_) in enumerate(tries):
        try:
            return _build(payload, from_, to_, attach=attach, reason=reason)
        except UnsafeAddressError as exc:
            if n == len(tries) - 1:
                raise
            log.warning("display name dropped from the archive email: %s", exc)
    raise AssertionError("unreachable")


def _bare(address: Address) -> Address:
    return Address(username=address.username, domain=address.domain)


def _build(payload: Payload, sender: Address, to: Address, *, attach: bool, reason: str) -> StreamedMessage:
    summary = Summary.of(payload, to, attached=attach, reason=reason)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = summary.subject()
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    msg.set_content(summary.text(), cte="quoted-printable")
    msg.add_alternative(summary.html(), subtype="html", cte="quoted-printable")
    token = f"lifeboat-archive-{uuid.uuid4().hex}"
    if attach:
        msg.add_attachment(b"", maintype="application", subtype="zip", filename=summary.filename)
        msg.get_payload()[-1].set_payload(token)
    if payload.manifest:
        msg.add_attachment(payload.manifest, maintype="application", subtype="json", filename="manifest.json")
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=POLICY).flatten(msg)
    raw = buffer.getvalue()
    check_headers(raw)
    check_addresses(raw, {"from": [sender], "to": [to]})
    if not attach:
        return StreamedMessage(head=raw)
    head, found, tail = raw.partition(token.encode())
    if not found or token.encode() in tail:
        raise UnsafeHeadersError("the archive placeholder is not in the message exactly once")
    return StreamedMessage(head, tail, payload.path, payload.size, payload.sha256)


def check_headers(raw: bytes) -> None:
    """Raise `UnsafeHeadersError` unless `raw` has exactly `HEADERS`, once each, and only CRLF."""
    header_block = raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    parsed = BytesHeaderParser(policy=email_policy.default).parsebytes(header_block)
    names = sorted(name.lower() for name in parsed.keys())  # noqa: SIM118 (keys() lists repeats)
    without_crlf = raw.replace(b"\r\n", b"")
    if names != sorted(HEADERS):
        raise UnsafeHeadersError(f"unexpected headers {names}")
    if b"\r" in without_crlf or b"\n" in without_crlf or not raw.isascii():
        raise UnsafeHeadersError("bare line break or non-ASCII byte in the message")


def check_addresses(raw: bytes, expected: Mapping[str, Sequence[str | Address]]) -> None:
    """Raise `UnsafeAddressError` unless each header reads back as exactly `expected` addresses.

    Why read back rather than trust what was set: what counts is what a mail
    client parses out of the bytes, and the library's folding has changed
    that before (see `build_message`). A named group (`Bcc: x@evil;`) is
    refused as well as any extra, missing or different address.
    """
    header_block = raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    parsed = BytesHeaderParser(policy=email_policy.default).parsebytes(header_block)
    for name, addresses in expected.items():
        try:
            values = parsed.get_all(name) or []
            groups = [group for value in values for group in value.groups]
            found = [address.addr_spec for value in values for address in value.addresses]
        except Exception as exc:
            # Python 3.11.7 itself trips over some of what its folding produced, with
            # AttributeError, TypeError or HeaderParseError from deep inside the parser.
            raise UnsafeAddressError(f"{name}: does not parse as an address list ({exc!r})") from None
        if len(values) != 1:
            raise UnsafeAddressError(f"{name}: {len(values)} headers instead of 1")
        if any(group.display_name is not None for group in groups):
            raise UnsafeAddressError(f"{name}: reads back as a group of addresses")
        wanted = [a.addr_spec if isinstance(a, Address) else a for a in addresses]
        if [a.lower() for a in found] != [a.lower() for a in wanted]:
            raise UnsafeAddressError(f"{name}: reads back as {found} instead of {wanted}")
        # A display name that lost its quotes may still give the right address (`,x <a@b>`
        # reads as an empty entry and `x`), but it is no longer what was set: not trusted.
        shown = [_squeezed(a.display_name) for value in values for a in value.addresses]
        for address, read_back in zip(addresses, shown, strict=True):
            if isinstance(address, Address) and _squeezed(address.display_name) != read_back:
                raise UnsafeAddressError(f"{name}: the display name does not read back as it was set")


def _squeezed(text: str) -> str:
    """Text without white space: folding may add spaces between encoded words (3.11.7)."""
    return "".join(text.split())


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

    @classmethod
    def of(cls, payload: Payload, to: Address, *, attached: bool, reason: str) -> Summary:
        return cls(
            name=clean_text(to.display_name),
            filename=safe_filename(payload.filename),
            size=payload.size,
            sha256=payload.sha256.lower(),
            created=payload.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            counts=counted(payload.counts),
            attached=attached,
            reason=reason,
            url=None if attached else payload.download_url,
            manifest=bool(payload.manifest),
        )

    def subject(self) -> str:
        inside = ", ".join(self.counts) or "no items"
        who = f" for {self.name}" if self.name else ""
        return clean_text(f"Lifeboat archive{who}, {self.created[:10]}: {inside}", limit=250)

    def verify_lines(self) -> list[str]:
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

    def text(self) -> str:
        lines = [f"Hello {self.name}," if self.name else "Hello,", ""]
        lines += [f"Here is your Lifeboat archive from {self.created}. Inside:", ""]
        lines += [f"  - {part}" for part in self.counts or ["no items"]]
        lines.append("")
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
            f"<p>Here is your Lifeboat archive from {e(self.created)}. Inside:</p>"
            f"<ul>{items}</ul>{where}<pre>{e(chr(10).join(self.verify_lines()))}</pre>"
            "</body></html>\n"
        )
