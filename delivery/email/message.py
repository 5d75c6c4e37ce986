"""Build the archive email as bytes, with the archive itself streamed from disk.

Why a placeholder instead of `add_attachment(data)`: the library would hold a
15 MiB archive as bytes, then as a 20 MiB base64 string, then in every
flattened copy (and `smtplib` adds two more while dot-stuffing). Here the
message is flattened with a unique token where the archive's base64 goes;
`StreamedMessage.chunks()` yields the head, the archive encoded 57 KiB at a
time straight from the file, then the tail. The file is read once, and hashed
while it is read, so a file that changed since it was verified is caught
before the message is complete.

Why the header check after flattening: `delivery.email.headers` already neutralises
user text (see there for the Python 3.11.7 encoded-word injection), but a
future library quirk must never become a delivered `Bcc:`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
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

from delivery.contract import Payload
from delivery.email.summary import Summary

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
log = logging.getLogger(__name__)


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
    message_id: str = ""  # the Message-ID header in `head`: the delivery's receipt

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


def build_message(
    payload: Payload, sender: Address, to: Address, *, attach: bool, reason: str, own: bool = True
) -> StreamedMessage:
    """Flatten the archive email; `reason` says why the archive is not attached, if it is not.

    `own`: whether `to` is the account's own address; if not, the text speaks to
    a recipient the owner chose, not to the owner (`Summary.of`).

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
            return _build(payload, from_, to_, attach=attach, reason=reason, own=own)
        except UnsafeAddressError as exc:
            if n == len(tries) - 1:
                raise
            log.warning("display name dropped from the archive email: %s", exc)
    raise AssertionError("unreachable")


def _bare(address: Address) -> Address:
    return Address(username=address.username, domain=address.domain)


def _build(payload: Payload, sender: Address, to: Address, *, attach: bool, reason: str, own: bool) -> StreamedMessage:
    summary = Summary.of(payload, to, attached=attach, reason=reason, own=own)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = summary.subject()
    message_id = stamp(msg, sender)
    msg.set_content(summary.text(), cte="quoted-printable")
    msg.add_alternative(summary.html(), subtype="html", cte="quoted-printable")
    token = f"lifeboat-archive-{uuid.uuid4().hex}"
    if attach:
        subtype = "octet-stream" if payload.sealed_to else "zip"  # a sealed archive is opaque bytes
        msg.add_attachment(b"", maintype="application", subtype=subtype, filename=summary.filename)
        parts = msg.get_payload()
        assert isinstance(parts, list) and not isinstance(parts[-1], str)  # multipart once an attachment is added
        parts[-1].set_payload(token)
    if payload.manifest:
        msg.add_attachment(payload.manifest, maintype="application", subtype="json", filename="manifest.json")
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=POLICY).flatten(msg)
    raw = buffer.getvalue()
    check_headers(raw)
    check_addresses(raw, {"from": [sender], "to": [to]})
    if not attach:
        return StreamedMessage(head=raw, message_id=message_id)
    head, found, tail = raw.partition(token.encode())
    if not found or token.encode() in tail:
        raise UnsafeHeadersError("the archive placeholder is not in the message exactly once")
    return StreamedMessage(head, tail, payload.path, payload.size, payload.sha256, message_id)


def stamp(msg: EmailMessage, sender: Address) -> str:
    """Set Date, Message-ID (under the sender's domain) and Auto-Submitted on `msg`; return the Message-ID.

    Why every message Lifeboat sends gets them, archive or notice: RFC 5322
    requires Date, many receivers score mail without Date or Message-ID as
    spam, and not every relay adds them. Auto-Submitted (RFC 3834) keeps
    vacation replies away.
    """
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message_id = make_msgid(domain=sender.domain or None)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    return message_id


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
