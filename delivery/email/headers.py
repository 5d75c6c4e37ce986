"""Make user-controlled text safe to put in an email header.

Why this module exists: on Python 3.11.7 the `email` package decodes an
encoded word such as `=?UTF-8?Q?=0A?=` inside a subject or display name and
writes the decoded line feed straight into the message, so a display name like
`=?UTF-8?Q?=0A?=Bcc: x@evil` adds a real `Bcc:` header (fixed only in later
patch releases). Raw CR/LF are refused by the library, but U+2028 and friends
are not, and other mail software treats them as line breaks. So everything a
user controls goes through `clean_text` (display names, subject parts) or
`parse_address` (addresses) before it reaches a header, and filenames through
`safe_filename`.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import HeaderParseError, MessageDefect
from email.headerregistry import Address

# Unicode categories that end a line or are invisible controls: Cc covers C0,
# DEL and C1 (including U+0085 NEL), Zl is U+2028, Zp is U+2029.
_LINE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Bidi embeddings/overrides/isolates: no injection, but they let a name
# display as something else, so they are dropped rather than kept.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
# Characters an addr-spec we accept may never contain: they open comments,
# quoted strings, lists, display names or domain literals.
_ADDRESS_FORBIDDEN = frozenset(' \t"(),:;<>[\\]')
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

MAX_DISPLAY_NAME = 120
MAX_ADDRESS = 254


class HeaderValueError(ValueError):
    """A value cannot be used in a header; the message says what is wrong."""


def clean_text(value: str | None, *, limit: int = MAX_DISPLAY_NAME) -> str:
    """Return `value` as one harmless header line: no line breaks, no encoded words.

    Line separators and control characters become spaces (so words stay
    apart), runs of white space collapse, lone surrogates become U+FFFD, and
    every `=?` becomes `= ?` so no encoded word survives to be decoded.
    Neutralising rather than refusing keeps delivery working for a user whose
    name happens to contain odd characters; the text stays readable.
    """
    if not value:
        return ""
    chars: list[str] = []
    for char in value:
        category = unicodedata.category(char)
        if category in _LINE_CATEGORIES:
            chars.append(" ")
        elif category == "Cs":
            chars.append("\ufffd")
        elif char not in _BIDI_CONTROLS:
            chars.append(char)
    text = _SPACES.sub(" ", "".join(chars)).strip()
    # After the control characters are gone, so "=\n?" cannot re-form "=?".
    text = text.replace("=?", "= ?")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text


def parse_address(value: str) -> Address:
    """Parse one bare address (`user@example.com`) strictly, or raise `HeaderValueError`.

    Why so strict: the value becomes both the SMTP envelope recipient and the
    `To:` header. Anything that could smuggle a second recipient or a display
    name (commas, angle brackets, quotes, comments, line breaks, encoded
    words) is refused outright instead of being interpreted. Internationalised
    domains are converted to their ASCII (IDNA) form; non-ASCII before the `@`
    would need SMTPUTF8, which we do not rely on.
    """
    if not isinstance(value, str) or not value:
        raise HeaderValueError("the address is empty")
    if len(value) > MAX_ADDRESS:
        raise HeaderValueError(f"the address is longer than {MAX_ADDRESS} characters")
    for char in value:
        if unicodedata.category(char) in _LINE_CATEGORIES | {"Cs", "Zs", "Cf"}:
            raise HeaderValueError("the address contains spaces, line breaks or control characters")
        if char in _ADDRESS_FORBIDDEN:
            raise HeaderValueError(f"the address contains {char!r}; give one bare address like name@example.com")
    if "=?" in value:
        raise HeaderValueError("the address contains an encoded word ('=?')")
    if value.count("@") != 1:
        raise HeaderValueError("the address must contain exactly one '@'")
    local, domain = value.split("@")
    if not local or len(local) > 64:
        raise HeaderValueError("the part before '@' must be 1 to 64 characters")
    if not local.isascii() or not _LOCAL_PART.match(local):
        raise HeaderValueError("the part before '@' may only contain ASCII letters, digits and !#$%&'*+/=?^_`{|}~.-")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise HeaderValueError("the part before '@' has a misplaced '.'")
    domain = _ascii_domain(domain)
    try:
        address = Address(username=local, domain=domain)
        # Round-trip through the library's own parser as a last check.
        reparsed = Address(addr_spec=address.addr_spec)
    except (HeaderParseError, MessageDefect, ValueError, IndexError) as exc:
        raise HeaderValueError(f"the address is not valid ({exc})") from None
    if (reparsed.username, reparsed.domain) != (local, domain):
        raise HeaderValueError("the address is not valid")
    return address


def _ascii_domain(domain: str) -> str:
    """Return the domain in ASCII (IDNA) form, checked label by label."""
    if not domain:
        raise HeaderValueError("the part after '@' is empty")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise HeaderValueError("the domain is not a valid internationalised name") from None
    labels = domain.split(".")
    if len(labels) < 2:
        raise HeaderValueError("the domain needs at least one '.', like example.com")
    if not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise HeaderValueError("the domain may only contain letters, digits, '-' and '.'")
    return domain.lower()


def mailbox(address: str, display_name: str | None) -> Address:
    """Build an `Address` from a strictly parsed address and a cleaned display name."""
    parsed = parse_address(address)
    return Address(display_name=clean_text(display_name), username=parsed.username, domain=parsed.domain)


def safe_filename(name: str, *, default: str = "lifeboat-archive.zip", limit: int = 100) -> str:
    """Reduce `name` to `[A-Za-z0-9._-]` for a `filename=` parameter.

    Why: the attachment name comes partly from user data (a slug of their
    address). A plain-ASCII name needs no RFC 2231 encoding, cannot carry a
    path or a line break, and saves the same on every mail client.
    """
    cleaned = _FILENAME_UNSAFE.sub("_", name or "").lstrip("._")
    if len(cleaned) > limit:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: limit - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned[:limit]
    return cleaned or default
