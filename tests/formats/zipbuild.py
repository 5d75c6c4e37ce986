"""Zips byte by byte, for what `zipfile` cannot write: names without the UTF-8 flag, extra fields, links.

Why: the archives people make again with Windows, macOS or old Info-ZIP
builds differ from `zipfile`'s output in exactly the places that matter to
the reader (raw name bytes, flag bit 11, the Unicode Path extra field 0x7075,
Unix modes). `zipfile` re-encodes every name, so those cases are built here.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
UTF8_FLAG = 0x800
UNIX, FAT = 3, 0
DOS_TIME, DOS_DATE = 0, (2026 - 1980) << 9 | 11 << 5 | 25


@dataclass(frozen=True)
class Raw:
    """One member exactly as it is to be stored (stored, not deflated: the reader handles both)."""

    name: bytes
    data: bytes = b""
    flags: int = 0
    extra: bytes = b""
    mode: int = 0o100644  # Unix mode for UNIX members; ignored for FAT
    system: int = UNIX

    @property
    def external_attr(self) -> int:
        if self.system == UNIX:
            return self.mode << 16
        return 0x10 if self.name.endswith((b"/", b"\\")) else 0x20  # DOS folder / archive bits


def unicode_path_extra(raw_name: bytes, name: str) -> bytes:
    """Info-ZIP's Unicode Path field: version 1, the CRC-32 of the stored name, the name in UTF-8."""
    body = b"\x01" + struct.pack("<L", zlib.crc32(raw_name)) + name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(body)) + body


def build_zip(path: Path, members: list[Raw]) -> Path:
    """Write `members` in order as a plain (non-ZIP64) zip at `path`."""
    out = bytearray()
    central = bytearray()
    for m in members:
        crc = zlib.crc32(m.data)
        offset = len(out)
        sizes = (crc, len(m.data), len(m.data), len(m.name), len(m.extra))
        out += _LOCAL.pack(b"PK\x03\x04", 20, 0, m.flags, 0, DOS_TIME, DOS_DATE, *sizes)
        out += m.name + m.extra + m.data
        central += _CENTRAL.pack(
            b"PK\x01\x02",
            30,
            m.system,
            20,
            0,
            m.flags,
            0,
            DOS_TIME,
            DOS_DATE,
            crc,
            len(m.data),
            len(m.data),
            len(m.name),
            len(m.extra),
            0,
            0,
            0,
            m.external_attr,
            offset,
        )
        central += m.name + m.extra
    start = len(out)
    out += central
    out += _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0)
    path.write_bytes(bytes(out))
    return path
