"""Execute one export run: claim it, export, verify, deliver, finish — or retry later.

Whoever calls this (an embedded pool thread, a Celery task) may be one of
several callers for the same run; only the one whose claim succeeds works,
and it keeps a lease alive with a heartbeat thread while it does.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.contract import Payload, Receipt
from delivery.sealing import sealed_payload
from errors import DeliveryError, LifeboatError
from exporters.archive.counts import counts_line
from exporters.archive.manifest import MANIFEST_NAME, ArchiveError
from exporters.archive.reader import read_member, verify_archive
from jobs import run_lifecycle as runs
from jobs.archive_options import seal_key_of
from jobs.bucket_retention import prune_after_delivery
from jobs.context import JobContext
from jobs.destination_consent import waiting_destinations
from jobs.download_links import needs_download_link
from jobs.export import export_user, fidelity_line, fidelity_row, vcard_version_for
from jobs.export_split import SplitExportStopped
from store import Archive, DeliveryAttempt, Destination, ExportRun, RunState, User
from store.archive_files import ArchiveFilesError, local_copy
from store.runs import KEPT_HERE

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

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        # On success the stage lines not yet written go with the run's last write instead
        # (`take_changes`, `runs.finish_delivered`): one transaction less per run.
        if exc_type is not None and self._changes and not self.lost.is_set():
            self._beat()

    def take_changes(self) -> list[tuple[str, dt.datetime]]:
        """The stage changes not yet written (the heartbeat has stopped), for the run's last write."""
        with self._lock:
            changes, self._changes = self._changes, []
        return changes

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
    """Execute a run this caller has already claimed.

    Why a new archive's row is written late: with nothing to send (the embedded
    default keeps archives on disk only), the archive row, the run's link to it,
    its history lines and "delivered" are one write transaction instead of two,
    and the destinations are read once. A run with somewhere to send it records
    the archive first, as before, so a retry after a failed delivery reuses it.
    Until its row is written the zip is removed on any failure (`made.discard`).
    """
    log.info("run started", extra={"run_id": run_id, "owner": owner})
    made: _Made | None = None
    try:
        with Heartbeat(ctx, run_id, owner) as beat:
            made = _archive_for(ctx, run_id, owner, beat)
            beat.report("deliver", 97)
            message = _deliver(ctx, run_id, owner, made)
            if beat.lost.is_set():
                raise LeaseLost(run_id)
        stages = beat.take_changes()
        if not runs.finish_delivered(
            ctx.db, run_id, owner, now=ctx.clock(), message=message, stages=stages, archive=made.unrecorded
        ):
            return "lost"
        made.unrecorded = None
        log.info("run delivered", extra={"run_id": run_id})
        return RunState.DELIVERED
    except LeaseLost:
        _log_lost(ctx, run_id)
        return "lost"
    except DeliveryError as exc:
        return _failed(ctx, run_id, owner, exc.user_message, permanent=exc.permanent, operator=exc.operator)
    except SplitExportStopped as exc:
        log.warning("run attempt stopped: %s", exc.what, extra={"run_id": run_id})
        return _failed(ctx, run_id, owner, exc.what, permanent=False)  # made a sentence there
    except Exception as exc:
        log.exception("run attempt crashed", extra={"run_id": run_id})
        return _failed(ctx, run_id, owner, _describe(exc), permanent=False)
    finally:
        if made is not None:
            made.discard(ctx)


def _log_lost(ctx: JobContext, run_id: str) -> None:
    """Why the run stopped being this worker's: the user cancelled it (info), or another worker took it over.

    Why ask: `runs.cancel` clears the lease as a take-over does, so every "Cancel" read in the
    log as a warning that another worker owned the run (user trial), sending support after a
    lease problem there was not.
    """
    with ctx.db.session() as session:
        state = session.scalar(select(ExportRun.state).where(ExportRun.id == run_id))
    if state == RunState.CANCELLED:
        log.info("run cancelled by its user; its export stopped", extra={"run_id": run_id})
    else:
        log.warning("run lease lost; another worker owns it now", extra={"run_id": run_id})


@dataclass
class _Made:
    """The run's verified archive, and what delivering it needs to know of the run and its user."""

    archive: Archive
    user_id: int
    attempt: int
    resend_to: str | None
    # A new export whose row is not written yet (`runs.NewArchive`); None once it is, or for an earlier one.
    unrecorded: runs.NewArchive | None = None
    # The run sends nothing (`store.runs.KEPT_HERE`: `lifeboat export` without --deliver), whichever worker runs it.
    kept_here: bool = False

    def record(self, ctx: JobContext, run_id: str, owner: str) -> None:
        """Write the new archive's row, link and history line now (before sending it anywhere)."""
        if self.unrecorded is None:
            return
        with ctx.db.session(write=True) as session:
            if not runs.record_archive(session, run_id, owner, self.unrecorded):
                # Someone else owns the run now: roll back; our complete but unneeded zip goes.
                raise LeaseLost(run_id)
        self.unrecorded = None

    def discard(self, ctx: JobContext) -> None:
        """Remove the zip of a new export whose row was never written: no file may look like an archive."""
        if self.unrecorded is not None:
            ctx.files.delete(self.unrecorded.row.relpath)
            self.unrecorded = None


def _archive_for(ctx: JobContext, run_id: str, owner: str, beat: Heartbeat) -> _Made:
    """The run's verified archive: reused from an earlier attempt if intact, else a new export (not recorded).

    Why the export reads in a read-only session: it reads for as long as the
    account is big, while other connections commit (claims, ticks, other
    exports, this run's own heartbeat). On SQLite a transaction that has read
    cannot start writing after that, so the archive row, the run's link to it
    and the history line are written afterwards in a short write transaction
    (`_Made.record`, or with the run's finish). If writing them fails or the run
    is no longer ours by then, nothing is written and the zip is removed.
    """
    made: _Made | None = None
    try:
        with ctx.db.session() as session:
            run = session.get(ExportRun, run_id)
            assert run is not None
            user_id, attempt, resend_to = run.user_id, run.attempt, run.resend_to
            kept_here = run.trigger == KEPT_HERE
            if run.archive is not None:
                try:
                    with local_copy(ctx.files, run.archive.relpath) as path:
                        verify_archive(path, scratch=ctx.files.scratch(), keys=ctx.signing_keys)
                except (ArchiveError, ArchiveFilesError, OSError):
                    log.warning("earlier archive unusable; exporting again", extra={"run_id": run_id})
                else:
                    return _Made(run.archive, user_id, attempt, resend_to, kept_here=kept_here)
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
                signer=ctx.signing_key,
            )
            exported = runs.NewArchive(
                row=result.archive,
                message=f"Archive written and verified: {counts_line(result.counts.as_dict())}; "
                f"{result.info.size:,} bytes, SHA-256 {result.info.sha256}. {fidelity_line(result)}".rstrip(),
                at=ctx.clock(),
                fidelity=fidelity_row(result, ctx.clock()),
            )
            if result.drill is not None and result.drill.differences:
                # Counts only: the differences name the user's items and values, which stay with the run.
                log.warning(
                    "fidelity drill found differences",
                    extra={"run_id": run_id, "items": result.drill.items, "differences": result.drill.differences},
                )
            made = _Made(result.archive, user_id, attempt, resend_to, unrecorded=exported, kept_here=kept_here)
        if beat.lost.is_set():
            raise LeaseLost(run_id)
    except BaseException:
        if made is not None:  # the zip is stored, its row not written (e.g. the read's commit failed)
            made.discard(ctx)
        raise
    return made


# A run that only exports (`store.runs.KEPT_HERE`: `lifeboat export` without --deliver), as History says it.
NOT_SENT = (
    "Not sent anywhere: exported at the command line without --deliver. "
    "The archive is kept on Lifeboat's disk, ready to download."
)


def _deliver(ctx: JobContext, run_id: str, owner: str, made: _Made) -> str:
    """Send the archive to every destination that has not yet received it in this run.

    A destination that fails does not stop the others: each is tried, and the run
    then fails (or retries, if any failure was transient) with the first failure.
    Each attempt is recorded (outcome, where, what to fix) and the destination's
    status updated, so the user and support see the truth for every target.
    Destinations read a real file: the stored one, or a download of it when
    archives live in a bucket. Who still needs it is decided first: a run with
    nothing to send (the embedded default keeps archives on disk only) neither
    downloads the archive from a bucket nor reads its manifest back, and leaves
    a new archive's row to the run's finish. Otherwise the archive is recorded
    before anything is sent, even when its destinations turn out unusable.
    """
    archive = made.archive
    if made.kept_here:
        return NOT_SENT
    try:
        with ctx.db.session() as session:
            user = session.get(User, made.user_id)
            assert user is not None
            # Deliveries are recorded only by this run's own attempts: none before its first.
            done = set() if made.attempt <= 1 else _delivered_to(session, run_id)
            to_own_email = made.resend_to == "email"  # a support re-send to the account's address
            targets = ctx.own_email(user) if to_own_email else ctx.destinations(session, user)
            destinations = [(key, backend) for key, backend in targets if key not in done]
            # Email addresses whose owner has not agreed yet get nothing; the run says so, and why.
            waiting = [] if to_own_email else waiting_destinations(session, user)
            if not destinations:
                if waiting:
                    return " ".join(["Archive kept on Lifeboat's disk, ready to download.", *waiting])
                if not done:
                    return "Archive kept on Lifeboat's disk, ready to download (no other destination set)."
                return "Already delivered to every destination."
            email, display_name, user_id = user.email, user.display_name, user.id
            seal = seal_key_of(user)
    except DeliveryError:
        made.record(ctx, run_id, owner)  # the archive stays the run's, as when a delivery fails
        raise
    made.record(ctx, run_id, owner)
    # A link row only when an email may carry it (no stray rows for runs that never show one).
    link = ctx.download_link(archive.id, user_id) if needs_download_link(b for _, b in destinations) else None
    with local_copy(ctx.files, archive.relpath) as path:
        plain = Payload(
            path=path,
            sha256=archive.sha256,
            size=archive.size,
            filename=archive.filename,
            user_email=email,
            user_display_name=display_name,
            created_at=archive.created_at,
            counts=archive.counts,
            manifest=b"" if seal is not None else _manifest_of(path),
            download_url=link,
        )
        delivered = []
        failures: list[DeliveryError] = []
        # Sealed once for every destination of this attempt: one ciphertext, one SHA-256 on each receipt.
        with sealed_payload(plain, seal, ctx.files.scratch()) as payload:
            for key, backend in destinations:
                try:
                    receipt = backend.deliver(payload)
                except DeliveryError as exc:
                    outcome = "permanent" if exc.permanent else "transient"
                    _record_attempt(ctx, run_id, key, outcome, None, exc.user_message, payload)
                    # The others still get their copy: one broken destination must not leave the rest without it.
                    failures.append(exc)
                    continue
                detail = " ".join([receipt.detail, *receipt.warnings]).strip()
                _record_attempt(ctx, run_id, key, "delivered", receipt, detail, payload)
                delivered.append(receipt.location)
                # Old archives go only after this one is verified and recorded; never fails the delivery.
                prune_after_delivery(ctx.db, run_id, key, backend, receipt, at=ctx.clock())
    if failures:
        # A transient failure first: the run is retried, and a retry skips the destinations already delivered to.
        raise next((exc for exc in failures if not exc.permanent), failures[0])
    if seal is not None:
        return " ".join([f"Encrypted to your {seal.label}, then delivered to " + ", ".join(delivered) + ".", *waiting])
    return " ".join(["Delivered to " + ", ".join(delivered) + ".", *waiting])


def _delivered_to(session: Session, run_id: str) -> set[int | None]:
    """Destinations an earlier attempt of this run already delivered to."""
    return set(
        session.scalars(
            select(DeliveryAttempt.destination_id).where(
                DeliveryAttempt.run_id == run_id, DeliveryAttempt.outcome == "delivered"
            )
        )
    )


def _manifest_of(path: Path) -> bytes:
    """manifest.json's bytes, without loading the zip's whole member list (flat memory)."""
    return read_member(path, MANIFEST_NAME)


def _record_attempt(
    ctx: JobContext,
    run_id: str,
    key: int | None,
    outcome: str,
    receipt: Receipt | None,
    message: str,
    payload: Payload | None = None,
) -> None:
    """One attempt, its receipt as data (key, version id, ETag, Message-ID, SHA-256s), history line, status.

    A sealed payload's own SHA-256 and size are the ciphertext's; the archive's is `plain_sha256`.
    """
    sealed = payload is not None and bool(payload.sealed_to)
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
                archive_sha256=(payload.plain_sha256 if sealed else payload.sha256) if payload is not None else None,
                sealed_sha256=payload.sha256 if payload is not None and sealed else None,
                sealed_size=payload.size if payload is not None and sealed else None,
                sealed_to=payload.sealed_to[:300] if payload is not None and sealed else None,
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
