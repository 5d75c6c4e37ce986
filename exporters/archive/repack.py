"""What a zip member stands for, in a Lifeboat archive or in one the user unpacked and zipped again.

Why this exists: a backup is the user's own copy, and people unpack it, look
around and zip it again with whatever their system offers (`zip -r`, Windows'
"Send to > Compressed folder", macOS Finder's "Compress" or `ditto -c -k`).
Those tools change nothing the manifest vouches for, but they change the zip:

- folder entries (`notes/`) appear, zero bytes, name ending in `/`;
- names lose the UTF-8 flag (see `exporters.archive.zipdir`), may use `\\` between
  folders (Windows PowerShell 5's `Compress-Archive`) and may be decomposed
  (macOS HFS+ stores `ü` as `u` + U+0308);
- zipping the folder from outside puts every member under one top folder
  (`lifeboat-alice/manifest.json`);
- macOS adds `__MACOSX/` and `._name` AppleDouble files (resource forks and
  extended attributes) and `.DS_Store`; none can be a Lifeboat file, since
  archive names never start with a dot and no archive has a top-level
  `__MACOSX` folder.

So every member name is mapped to an archive path (separators, NFC, the top
folder dropped) before it is matched against `manifest.json`. Folder entries
and the macOS extras are skipped (verify says how many), but each name is still
checked: an absolute or `..` path, a drive letter, a symbolic link or a name
given twice is refused wherever it appears. Anything else that the manifest does
not list still fails verification, as before.
"""

from __future__ import annotations

import stat
import unicodedata
from dataclasses import dataclass, field
from enum import Enum

from exporters.archive.manifest import MANIFEST_NAME
from exporters.archive.paths import unsafe_path_reason

_MACOS_FOLDER = "__MACOSX"
_MACOS_FILES = frozenset({".DS_Store"})
_APPLEDOUBLE_PREFIX = "._"
_FOLDERS_KEPT = 2  # top folders remembered while looking for a shared one: one, or "more than one"
NAMES_SHOWN = 5  # skipped names kept to show the user; the rest are only counted


class Kind(Enum):
    FILE = "file"
    FOLDER = "folder"  # a folder entry, `notes/`: nothing to check
    OS_EXTRA = "os-extra"  # added by macOS when zipping: skipped


class UnsafeMember(ValueError):
    """A member no reader may extract or trust; the message names it and says why."""


def member_path(name: str) -> str:
    """The archive path a member name stands for: `/` between folders, NFC, no top folder dropped yet.

    Why `\\` becomes `/`: Lifeboat never writes a backslash into a name (it is
    not portable), so in a member name it can only be a Windows tool's folder
    separator; after the swap `..\\x` is the `../x` it would extract to, and is
    refused like it.
    """
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


def classify(name: str, mode: int = 0) -> tuple[Kind, str]:
    """Say what the member `name` is and give its archive path; `UnsafeMember` if it is dangerous.

    `mode` is the Unix mode the zip records (0 when the tool records none).
    """
    path = member_path(name)
    if stat.S_ISLNK(mode):
        raise UnsafeMember(f"member {name!r} is a symbolic link, which could point outside the folder")
    folder = path.endswith("/")
    reason = unsafe_path_reason(path[:-1] if folder else path)
    if reason is not None:
        raise UnsafeMember(f"member {name!r} is unsafe to extract: {reason}")
    if folder:
        return Kind.FOLDER, path
    parts = path.split("/")
    if parts[0] == _MACOS_FOLDER or parts[-1].startswith(_APPLEDOUBLE_PREFIX) or parts[-1] in _MACOS_FILES:
        return Kind.OS_EXTRA, path
    return Kind.FILE, path


@dataclass
class ZipSurvey:
    """Collects member paths during one pass and decides whether they share a top folder to drop."""

    folders: int = 0
    os_extras: int = 0
    os_extra_names: list[str] = field(default_factory=list)
    _tops: set[str] = field(default_factory=set)
    _manifests: set[str] = field(default_factory=set)

    def add(self, kind: Kind, path: str) -> None:
        if kind is Kind.FOLDER:
            self.folders += 1
        elif kind is Kind.OS_EXTRA:
            self.os_extras += 1
            if len(self.os_extra_names) < NAMES_SHOWN:
                self.os_extra_names.append(path)
            return
        top, slash, rest = path.partition("/")
        if len(self._tops) < _FOLDERS_KEPT:
            self._tops.add(top if slash else "")
        if rest == MANIFEST_NAME or (not slash and path == MANIFEST_NAME):
            self._manifests.add(top if slash else "")

    def prefix(self) -> str:
        """The top folder to drop (`"lifeboat-alice/"`), or "" when the archive's files are at the top.

        A folder is dropped only when everything but the macOS extras is inside
        that one folder and `manifest.json` is directly in it: the zip of an
        unpacked archive made from outside its folder. One level only; deeper
        nesting is not something any tool does by itself.
        """
        if len(self._tops) == 1 and "" not in self._tops:
            (top,) = self._tops
            if top in self._manifests:
                return f"{top}/"
        return ""

    def skipped(self) -> str:
        """What verification passed over, for people reading its output ("" when nothing)."""
        parts = []
        if self.folders:
            parts.append(f"{self.folders} folder entr{'y' if self.folders == 1 else 'ies'}")
        if self.os_extras:
            shown = ", ".join(self.os_extra_names)
            more = f" and {self.os_extras - len(self.os_extra_names)} more" if self.os_extras > NAMES_SHOWN else ""
            parts.append(f"{self.os_extras} file(s) macOS adds when zipping ({shown}{more})")
        return "; ".join(parts)
