"""What a new archive's fidelity drill found, and how many changes its manifest lists (issue 16).

Why a row of its own: the run's page and the API show the user, for every
export, "Read back 1,234 items: 0 differences" and "0 changes" (or what
differed and what was changed), long after the archive file may have been
pruned. The store keeps the figures and the first few lines as the drill and the
manifest worded them (`exporters.archive.drill`, `exporters.archive.changes`);
it knows nothing of how they were found.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime, utcnow


class ExportFidelity(Base):
    """One export's read-back result: items compared, items that differ, changes made, the first lines of each."""

    __tablename__ = "export_fidelity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The run that made the archive (None: an export outside a run, e.g. `lifeboat export`).
    run_id: Mapped[str | None] = mapped_column(ForeignKey("export_runs.id", ondelete="CASCADE"), index=True)
    archive_id: Mapped[str | None] = mapped_column(ForeignKey("archives.id", ondelete="SET NULL"), index=True)
    items: Mapped[int] = mapped_column(Integer)  # records read back and compared
    # Of them, how many differ from what went in (indexed: the support queue lists the few that do).
    differences: Mapped[int] = mapped_column(Integer, index=True)
    changes: Mapped[int] = mapped_column(Integer)  # entries in the manifest's `changes` section
    # JSON {"differences": [line, ...], "changes": [line, ...], "described": [{kind, item, field, expected,
    # found}, ...]}: the first few of each, in words, and the differences as fields ("described": since 0017).
    detail: Mapped[str] = mapped_column(Text, default="{}")
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How the archive was read back: "full" (every item parsed) or with what the drill could skip.
    method: Mapped[str] = mapped_column(String(16), default="full")
    # Of `items`, how many were not parsed again: their bytes were proven by earlier drills ("memo").
    # None: checked before this was kept (migration 0017).
    skipped: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The kinds and field names of the first differences, without values or item ids
    # ("contact emails[0].value; note title"): what the support queue may show. None: none, or before 0017.
    difference_fields: Mapped[str | None] = mapped_column(Text, nullable=True)

    def lines(self, kind: str) -> list[str]:
        """The first few lines of `kind` ("differences" or "changes") as stored."""
        value = self._detail(kind)
        return [str(line) for line in value] if isinstance(value, list) else []

    def described(self) -> list[dict[str, str]]:
        """The first differences as fields (kind, item, field, expected, found); [] for rows written before them."""
        value = self._detail("described")
        if not isinstance(value, list):
            return []
        keys = ("kind", "item", "field", "expected", "found")
        return [{key: str(entry.get(key, "")) for key in keys} for entry in value if isinstance(entry, dict)]

    def _detail(self, key: str) -> object:
        try:
            return json.loads(self.detail or "{}").get(key, [])
        except (ValueError, AttributeError):
            return []
