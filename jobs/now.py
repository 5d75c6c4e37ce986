"""Export and deliver one user's data now, from the command line, through the real run path.

Why a run and not a bare export plus uploads: the run is where delivery is
recorded (attempts, destination status, history on the dashboard) and where
the one-active-run-per-user rule keeps a CLI delivery from racing a scheduled
one. The CLI's run gets a single attempt: the person at the terminal sees the
final outcome and decides whether to try again; nothing retries behind them.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field

from sqlalchemy import select

from errors import UserError
from jobs import run_lifecycle
from jobs.context import JobContext, no_notifier
from jobs.execute import execute_run
from store import DeliveryAttempt, Destination, ExportRun, RunState
from store.runs import KEPT_HERE


@dataclass(frozen=True)
class DestinationOutcome:
    label: str
    outcome: str  # delivered, transient, permanent, not tried
    detail: str


@dataclass(frozen=True)
class DeliverOutcome:
    run_id: str
    state: str
    message: str  # the run's last word: what was delivered, or what went wrong and what to do
    archive_relpath: str | None
    destinations: list[DestinationOutcome] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return self.state == RunState.DELIVERED


class ExportInProgress(UserError):
    """The user already has an active run; a second one would be refused by the database anyway."""


def deliver_now(
    ctx: JobContext, user_id: int, *, vcard_version: str | None = None, deliver: bool = True
) -> DeliverOutcome:
    """Queue a run for `user_id`, execute it in this thread, and report each destination's outcome.

    `deliver=False` exports and records the run without sending the archive anywhere
    (`lifeboat export` without --deliver): History still lists the run, with its drill.
    """
    now = ctx.clock()
    with ctx.db.session(write=True) as session:
        # A run that sends nothing says so in its row: whichever worker runs it, and no missed-run alert counts it.
        trigger = "cli" if deliver else KEPT_HERE
        run, created = run_lifecycle.request_run(session, user_id, trigger, now=now, max_attempts=1)
        if not created:
            raise ExportInProgress(
                f"An export of this user is already {run.state} (run {run.id}); wait for it to end "
                "(the dashboard shows it) and try again."
            )
        run_id = run.id
    owner = f"cli:{socket.gethostname()}:{os.getpid()}:{run_id}"
    # The person at the terminal is told the outcome; the user is not emailed about a run they did not start.
    try:
        execute_run(dataclasses.replace(ctx, vcard_override=vcard_version, notify_failure=no_notifier), run_id, owner)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # stopped at the terminal (SIGTERM, Ctrl-C): free the user for a rerun
            run_lifecycle.cancel(ctx.db, run_id, user_id, now=ctx.clock())
        raise
    return _outcome(ctx, run_id)


def _outcome(ctx: JobContext, run_id: str) -> DeliverOutcome:
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        attempts = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == run_id)))
        enabled = list(
            session.scalars(
                select(Destination)
                .where(Destination.user_id == run.user_id, Destination.enabled.is_(True))
                .order_by(Destination.id)
            )
        )
        labels = {d.id: d.label for d in enabled}
        results = [
            DestinationOutcome(
                label=labels.get(a.destination_id, a.location or "destination") if a.destination_id else "destination",
                outcome=a.outcome,
                detail=f"{a.location} {a.message}".strip() if a.outcome == "delivered" else a.message,
            )
            for a in attempts
        ]
        tried = {a.destination_id for a in attempts}
        # Every destination is tried (`execute._deliver`): one without an attempt was switched on after the run
        # started, or the run stopped before sending anything (e.g. a key it cannot encrypt to).
        why = "switched on after this export started" if attempts else "the run stopped before sending anything"
        results += [
            DestinationOutcome(label=d.label, outcome="not tried", detail=why) for d in enabled if d.id not in tried
        ]
        last = run.history[-1].message if run.history else ""
        message = run.error if run.state == RunState.FAILED and run.error else last
        return DeliverOutcome(
            run_id=run.id,
            state=run.state,
            message=message,
            archive_relpath=run.archive.relpath if run.archive else None,
            destinations=results,
        )
