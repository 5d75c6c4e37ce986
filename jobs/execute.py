"""Execute one export run: claim it, export, verify, deliver, finish — or retry later.

Whoever calls this (an embedded pool thread, a Celery task) may be one of
several callers for the same run; only the one whose claim succeeds works,
and it keeps a lease alive with a heartbeat thread while it does.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from sqlalchemy import select

from delivery.contract import Payload, Receipt
from errors import DeliveryError, LifeboatError
from exporters.archive.counts import counts_line
from exporters.archive.manifest import MANIFEST_NAME, ArchiveError
from exporters.archive.reader import read_member, verify_archive
from jobs import run_lifecycle as runs
from jobs.bucket_retention import prune_after_delivery
from jobs.context import JobContext
from jobs.download_links import needs_download_link
from jobs.export import export_user, vcard_version_for
from store import Archive, DeliveryAttempt, Destination, ExportRun, RunState, User
from store.archive_files import ArchiveFilesError, local_copy

log = logging.getLogger("lifeboat.run")
# How often, at most, a running export writes its progress for the pages that watch it.
PROGRESS_EVERY = 1.0
RESEND_GONE = (
    "The archive to re-send is no longer on Lifeboat (deleted or damaged), so nothing was sent: "
    "re-send a newer archive, or start a new export."
)


class LeaseLost(LifeboatError):
    """Another executor took the run over (ours looked dead); stop without side effects."""


class Heartbeat:
    """Renew the run's lease in the background and carry progress and stage changes to the database.

    Each stage change is noted with the time it happened and written as a
    "stage" history line with the next renewal (and at the latest when the
    heartbeat stops), in the renewal's own short transaction and only while
    the run is still ours: the run's page times each stage from these lines.
    """

    def __init__(self, ctx: JobContext, run_id: str, owner: str) -> None:
        self.ctx, self.run_id, self.owner = ctx, run_id, owner
        self.stage: str | None = "starting"
        self.progress: int | None = 0
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id[:8]}", daemon=True)
        self._named = "starting"  # the claim's "started" line marks when "starting" began
        self._changes: list[tuple[str, dt.datetime]] = []  # stage changes not yet written
        self._lock = threading.Lock()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._changes and not self.lost.is_set():
            self._beat()

    def report(self, stage: str, progress: int) -> None:
        self.stage, self.progress = stage, progress
        name = stage.partition(":")[0]  # the name, without its counts
        if name != self._named:
            self._named = name
            with self._lock:
                self._changes.append((name, self.ctx.clock()))
        if self.ctx.on_progress is not None:
            self.ctx.on_progress(name, progress)
        if self.lost.is_set():
            raise LeaseLost(f"run {self.run_id} was taken over by another worker")

    def _loop(self) -> None:
        """Renew every quarter lease, and sooner (at most once a second) when progress moved.

        Why sooner: a user watching the page would otherwise see "starting" jump
        to "done" for any export shorter than a quarter of the lease.
        """
        interval = max(0.2, self.ctx.lease.total_seconds() / 4)
        tick = min(interval, PROGRESS_EVERY)
        written: tuple[str | None, int | None] = (self.stage, self.progress)
        since = 0.0
        while not self._stop.wait(tick):
            since += tick
            if since < interval and (self.stage, self.progress) == written and not self._changes:
                continue
            since, written = 0.0, (self.stage, self.progress)
            if self._beat() is False:
                self.lost.set()
                return

    def _beat(self) -> bool | None:
        """One renewal with the progress and any stage changes; None if the write failed (retried next time)."""
        with self._lock:
            changes, self._changes = self._changes, []
        try:
            return runs.heartbeat(
                self.ctx.db,
                self.run_id,
                self.owner,
                now=self.ctx.clock(),
                lease=self.ctx.lease,
                stage=self.stage,
                progress=self.progress,
                stages=changes,
            )
        except Exception:
            log.warning("heartbeat failed", extra={"run_id": self.run_id}, exc_info=True)
            with self._lock:
                self._changes[:0] = changes
            return None


def execute_run(ctx: JobContext, run_id: str, owner: str) -> str:
    """Run `run_id` if this caller can claim it; return the outcome for logs and tests."""
    if not runs.claim(ctx.db, run_id, owner, now=ctx.clock(), lease=ctx.lease):
        return "skipped"
    return run_claimed(ctx, run_id, owner)


def run_claimed(ctx: JobContext, run_id: str, owner: str) -> str:
    """Execute a run this caller has already claimed."""
    log.info("run started", extra={"run_id": run_id, "owner": owner})
    try:
        with Heartbeat(ctx, run_id, owner) as beat:
            archive = _archive_for(ctx, run_id, owner, beat)
            beat.report("deliver", 97)
            message = _deliver(ctx, run_id, archive)
            if beat.lost.is_set():
                raise LeaseLost(run_id)
        if not runs.finish_delivered(ctx.db, run_id, owner, now=ctx.clock(), message=message):
            return "lost"
        log.info("run delivered", extra={"run_id": run_id})
        return RunState.DELIVERED
    except LeaseLost:
        log.warning("run lease lost; another worker owns it now", extra={"run_id": run_id})
        return "lost"
    except DeliveryError as exc:
        return _failed(ctx, run_id, owner, exc.user_message, permanent=exc.permanent, operator=exc.operator)
    except Exception as exc:
        log.exception("run attempt crashed", extra={"run_id": run_id})
        return _failed(ctx, run_id, owner, _describe(exc), permanent=False)


def _archive_for(ctx: JobContext, run_id: str, owner: str, beat: Heartbeat) -> Archive:
    """The run's verified archive: reused from an earlier attempt if intact, else a new export.

    If the transaction recording a new archive fails (the database went away
    between writing the zip and committing its row), the zip is removed: a
    complete file that no archive row names must not look like one. The next
    attempt exports again.
    """
    written: list[str] = []
    try:
        return _recorded_archive(ctx, run_id, owner, beat, written)
    except BaseException:
        for relpath in written:
            ctx.files.delete(relpath)
        raise


def _recorded_archive(ctx: JobContext, run_id: str, owner: str, beat: Heartbeat, written: list[str]) -> Archive:
    """Reuse the run's archive or export a new one, then record it.

    Why two transactions: the export reads for as long as the account is big,
    while other connections commit (claims, ticks, other exports, this run's
    own heartbeat). On SQLite a transaction that has read cannot start writing
    after that, so the export reads in a read-only session and the archive row,
    the run's link to it and the history line are written afterwards in one
    short write transaction. If the run is no longer ours by then, nothing is
    written and the zip is removed (by `_archive_for`).
    """
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        if run.archive is not None:
            try:
                with local_copy(ctx.files, run.archive.relpath) as path:
                    verify_archive(path, scratch=ctx.files.scratch())
            except (ArchiveError, ArchiveFilesError, OSError):
                log.warning("earlier archive unusable; exporting again", extra={"run_id": run_id})
            else:
                return run.archive
        if run.resend_to is not None:
            # A re-send promises the same bytes: a new export would be a different archive.
            raise DeliveryError("re-send archive unusable", permanent=True, user_message=RESEND_GONE)
        user = session.get(User, run.user_id)
        assert user is not None
        result = export_user(
            session,
            user,
            ctx.files,
            now=ctx.clock(),
            vcard_version=vcard_version_for(user, ctx.vcard_version, ctx.vcard_override),
            progress=beat.report,
            cache_dir=ctx.export_cache_dir,
        )
        written.append(result.archive.relpath)
    if beat.lost.is_set():
        raise LeaseLost(run_id)
    with ctx.db.session(write=True) as session:
        session.add(result.archive)
        session.flush()
        if not runs.attach_archive(session, run_id, owner, result.archive.id):
            # Someone else owns the run now: roll back; our complete but unneeded zip goes.
            raise LeaseLost(run_id)
        counts = result.counts
        runs.add_event(
            session,
            run_id,
            "exported",
            f"Archive written and verified: {counts_line(counts.as_dict())}; "
            f"{result.info.size} bytes, SHA-256 {result.info.sha256}.",
            at=ctx.clock(),
        )
    return result.archive


def _deliver(ctx: JobContext, run_id: str, archive: Archive) -> str:
    """Send the archive to every destination that has not yet received it in this run.

    Each attempt is recorded (outcome, where, what to fix) and the destination's
    status updated, so the user and support see the truth for every target.
    Destinations read a real file: the stored one, or a download of it when
    archives live in a bucket.
    """
    with local_copy(ctx.files, archive.relpath) as path:
        return _deliver_file(ctx, run_id, archive, path)


def _deliver_file(ctx: JobContext, run_id: str, archive: Archive, path: Path) -> str:
    """`_deliver` with the archive at `path`."""
    with ctx.db.session() as session:
        user = session.get(User, archive.user_id)
        assert user is not None
        done = set(
            session.scalars(
                select(DeliveryAttempt.destination_id).where(
                    DeliveryAttempt.run_id == run_id, DeliveryAttempt.outcome == "delivered"
                )
            )
        )
        run = session.get(ExportRun, run_id)
        to_own_email = run is not None and run.resend_to == "email"  # a support re-send to the account's address
        targets = ctx.own_email(user) if to_own_email else ctx.destinations(session, user)
        destinations = [(key, backend) for key, backend in targets if key not in done]
        payload = Payload(
            path=path,
            sha256=archive.sha256,
            size=archive.size,
            filename=archive.filename,
            user_email=user.email,
            user_display_name=user.display_name,
            created_at=archive.created_at,
            counts=archive.counts,
            manifest=_manifest_of(path),
            # A link row only when an email may carry it (no stray rows for runs that never show one).
            download_url=ctx.download_link(archive.id, user.id)
            if needs_download_link(backend for _, backend in destinations)
            else None,
        )
    if not done and not destinations:
        return "Archive kept on Lifeboat's disk, ready to download (no other destination set)."
    delivered = []
    for key, backend in destinations:
        try:
            receipt = backend.deliver(payload)
        except DeliveryError as exc:
            outcome = "permanent" if exc.permanent else "transient"
            _record_attempt(ctx, run_id, key, outcome, None, exc.user_message)
            raise
        detail = " ".join([receipt.detail, *receipt.warnings]).strip()
        _record_attempt(ctx, run_id, key, "delivered", receipt, detail)
        delivered.append(receipt.location)
        # Old archives go only after this one is verified and recorded; never fails the delivery.
        prune_after_delivery(ctx.db, run_id, key, backend, receipt, at=ctx.clock())
    if not delivered:
        return "Already delivered to every destination."
    return "Delivered to " + ", ".join(delivered) + "."


def _manifest_of(path: Path) -> bytes:
    """manifest.json's bytes, without loading the zip's whole member list (flat memory)."""
    return read_member(path, MANIFEST_NAME)


def _record_attempt(
    ctx: JobContext, run_id: str, key: int | None, outcome: str, receipt: Receipt | None, message: str
) -> None:
    """One attempt and its receipt as data (key, version id, ETag, Message-ID), the run's history line, the status."""
    now = ctx.clock()
    location = receipt.location if receipt is not None else None
    warning = bool(receipt is not None and receipt.warnings)
    with ctx.db.session(write=True) as session:
        session.add(
            DeliveryAttempt(
                run_id=run_id,
                destination_id=key,
                at=now,
                outcome=outcome,
                location=location,
                message=message,
                object_key=receipt.object_key if receipt is not None else None,
                version_id=receipt.version_id if receipt is not None else None,
                etag=receipt.etag if receipt is not None else None,
                message_id=receipt.message_id if receipt is not None else None,
            )
        )
        level = "info" if outcome == "delivered" and not warning else "warning" if outcome != "permanent" else "error"
        text = f"Delivered to {location}. {message}".strip() if outcome == "delivered" else message
        runs.add_event(session, run_id, "destination", text, at=now, level=level)
        destination = session.get(Destination, key) if key is not None else None
        if destination is not None:
            destination.status = (
                "ok" if outcome == "delivered" and not warning else ("warning" if outcome != "permanent" else "error")
            )
            destination.status_message = text
            destination.status_at = now


def _failed(ctx: JobContext, run_id: str, owner: str, error: str, *, permanent: bool, operator: bool = False) -> str:
    state = runs.finish_failed_attempt(
        ctx.db, run_id, owner, now=ctx.clock(), error=error, permanent=permanent, policy=ctx.policy, operator=operator
    )
    if state == RunState.FAILED:
        with ctx.db.session() as session:
            run = session.get(ExportRun, run_id)
            user = session.get(User, run.user_id) if run else None
        if run is not None and user is not None:
            try:
                ctx.notify_failure(user, run)
            except Exception:
                log.exception("could not notify user of failed run", extra={"run_id": run_id})
    return str(state) if state else "lost"


def _describe(exc: BaseException) -> str:
    """What went wrong, for the user; whether Lifeboat retries is added by `runs.finish_failed_attempt`."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"Could not write the archive: {exc.strerror}. Support has been notified."
    return "The export failed unexpectedly; support can see the details."
