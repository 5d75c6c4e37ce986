"""Job commands: `import-account`, `export`, `archive-options`, `verify`, `restore`, `demo`, `scheduler`,
`export-all`, `schedule`, `users`, and `db upgrade` (guarded: jobs know when an upgrade is safe, store only migrates).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NoReturn

import click
from flask import current_app, has_app_context
from flask.cli import with_appcontext
from sqlalchemy import inspect, select

from account import canonical
from account.jsonio import load_account
from config import BY_NAME, startup_refusal
from delivery.sealing import MAX_KEY_TEXT, SealKeyError, decrypt_command, plain_name, seal_key_from_bytes, sealed_kind
from errors import InvalidInput, Stopped, instance_if_any, stop_on_signals, stopped_says
from exporters.archive.check import TWO_PROCESSES_FROM, check_archive
from exporters.archive.counts import KINDS, account_counts, counts_line
from exporters.archive.helper import HelperFailed
from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import archive_owner, verify_archive
from exporters.archive.signature import KeyRing
from jobs.archive_options import ArchiveOptions, key_expiry, save_archive_options, seal_state, stopped_words
from jobs.commands.base_url import warn_when_mailing
from jobs.commands.destination import COMMANDS as DESTINATION_COMMANDS
from jobs.commands.generated_account import COMMANDS as GENERATED_ACCOUNT_COMMANDS
from jobs.commands.scrub import COMMANDS as SCRUB_COMMANDS
from jobs.commands.signing_key import COMMANDS as SIGNING_KEY_COMMANDS
from jobs.commands.staff_members import COMMANDS as USER_COMMANDS
from jobs.commands.stale_versions import COMMANDS as VERSION_COMMANDS
from jobs.commands.support_bulk import COMMANDS as SUPPORT_COMMANDS
from jobs.commands.unknown_user import IMPORT, no_user
from jobs.export import VCARD_VERSIONS, readback_line
from jobs.housekeeping import remove_abandoned
from jobs.restore import HoldsData, data_held, restore_archive
from jobs.signing_keys import read_key_ring
from jobs.staff_accounts import refuse_staff_data
from jobs.user_schedule import WEEKDAYS, ScheduleChange, describe, find_schedule, save_schedule, switch_off
from store import Archive, ExportFidelity, migrate
from store.accounts import find_user, replace_account
from store.archive_files import ArchiveFiles, local_copy, partial_file, remove_abandoned_partials
from store.base import utcnow
from store.db import get_db
from store.freshness import users_without_fresh_archive

if TYPE_CHECKING:
    from jobs.now import DeliverOutcome


@click.command("export")
@click.argument("email")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also copy the archive here; the copy is read back and its checksums checked.",
)
@click.option(
    "--check",
    "check",
    is_flag=True,
    help="Also parse every file of the archive with independent parsers, as `verify` does "
    "(about as long again as the export at 10,000 contacts and 50,000 events).",
)
@click.option(
    "--deliver",
    is_flag=True,
    help="Also deliver the archive to EMAIL's destinations (S3, email), as a scheduled export does. "
    "Without it nothing leaves this machine.",
)
@click.option(
    "--vcard-version",
    type=click.Choice(VCARD_VERSIONS),
    default=None,
    help="vCard version for this export only (default: the user's option, see archive-options).",
)
@with_appcontext
def export_command(email: str, out: Path | None, check: bool, deliver: bool, vcard_version: str | None) -> None:
    """Export EMAIL's data now and print the verified archive's path (with --out, that of the copy there).

    Without --out the path is Lifeboat's own stored copy, which its downloads use:
    do not move or delete it; --out DIR gives a copy of one's own.

    Either way the export is a run the user's History lists, with its read-back.
    Without --deliver the archive is only written to Lifeboat's archive folder
    (and --out): it is NOT sent to the user's destinations. With --deliver it
    is delivered, like "Export now" on the dashboard, and each destination's
    outcome is printed; the exit status is non-zero if any delivery failed.

    Every archive is read back once written (checksums, manifest, zip
    structure), and so is the copy in --out. --check also runs `verify`'s
    independent parsers over it.

    SIGTERM or SIGINT stops it with one line, its unfinished files removed; what an
    export killed outright (SIGKILL) left is removed when the next one starts.
    """
    with stop_on_signals():
        _export(email, out, check, deliver, vcard_version)


def _export(email: str, out: Path | None, check: bool, deliver: bool, vcard_version: str | None) -> None:
    from jobs import get_context

    files = get_context().files
    remove_abandoned(files)  # what an export killed outright (SIGKILL) left behind
    with get_db().session() as session:
        user = find_user(session, email)
        if user is None:
            raise no_user(email, IMPORT)
        user_id = user.id
    if out is not None:
        _check_out(out)  # before anything is exported: a folder we cannot write to must not cost a run
    if deliver:
        _export_and_deliver(email, user_id, files, out, vcard_version, check)
        return
    # Through a run that sends nothing, as `demo` does: History lists every export with its drill
    # (a bare export made an archive History never mentioned: user trial).
    outcome = _run_now(user_id, vcard_version, deliver=False)
    if outcome.archive_relpath is None or not outcome.delivered:
        raise click.ClickException(f"Run {outcome.run_id} {outcome.state}: {outcome.message}")
    with get_db().session() as session:
        archive = session.scalar(select(Archive).where(Archive.relpath == outcome.archive_relpath))
        assert archive is not None  # the run that made it has just recorded it
        relpath, filename, size, sha256, counts = (
            archive.relpath, archive.filename, archive.size, archive.sha256, archive.counts
        )  # fmt: skip
        fidelity = session.scalar(select(ExportFidelity).where(ExportFidelity.run_id == outcome.run_id))
    try:
        path = _copy_out(files, relpath, filename, out, check)
    except _CopyFailed as failed:
        # The copy was the run's point: History must not say "delivered" (user trial: delivered|cli-local).
        from jobs import get_context
        from jobs.run_lifecycle import fail_kept_here

        local = files.local_path(relpath)
        kept, fetch = (
            (local, f"cp {local} DIR/{filename}") if local else (f"{relpath} in the archive store", "the Archives page")
        )
        said = f"The archive was made and is kept on the server ({filename}): download it from Archives"
        fail_kept_here(get_db(), outcome.run_id, now=get_context().clock(), error=f"{failed.reason} {said}")
        raise click.ClickException(
            f"{failed.reason} The archive was made and is kept on the server at {kept} (fetch it with {fetch}); "
            f"run {outcome.run_id} is recorded as failed."
        ) from None
    except Stopped as stopped:  # the archive is recorded: the user sees it, so the line says it is kept
        place = files.local_path(relpath) or f"{relpath} in the archive store"
        unfinished = " and ".join(what for what, asked in ((f"the copy into {out}", out), ("--check", check)) if asked)
        stopped.kept = f"{place}; {unfinished} did not finish"
        raise
    click.echo(
        f"{path}\n{_stored_copy(out)}  {counts_line(counts)}; {size:,} bytes, sha256 {sha256}\n"
        f"{_fidelity_lines(fidelity)}"
        f"{_CHECKED if check else ''}"
        "  Not delivered: the archive stays on this machine. Add --deliver to send it to the user's destinations.\n"
        f"Run {outcome.run_id} recorded in the user's History."
    )
    if fidelity is not None and fidelity.differences:
        raise SystemExit(1)  # written and kept, but not everything came back: a script must notice


STORED_COPY = (
    "  That is Lifeboat's own stored copy (its downloads and History use it): do not move or delete it. "
    "For a copy of your own, add --out DIR.\n"
)


def _stored_copy(out: Path | None) -> str:
    """The line under the path when it is the service's stored copy (no --out): a user trial took it for theirs."""
    return STORED_COPY if out is None else ""


def _run_now(user_id: int, vcard: str | None, *, deliver: bool) -> DeliverOutcome:
    """A run of the user's export in this process (`jobs.now.deliver_now`); one line if one is active already."""
    from jobs import get_context
    from jobs.now import ExportInProgress, deliver_now

    try:
        return deliver_now(get_context(), user_id, vcard_version=vcard, deliver=deliver)
    except ExportInProgress as exc:
        raise click.ClickException(str(exc)) from None


def _fidelity_lines(fidelity: ExportFidelity | None) -> str:
    """The run's drill for the CLI ("" when it ran none), as History has it."""
    if fidelity is None:
        return ""
    where = [(d["kind"], d["item"], d["field"]) for d in fidelity.described()]
    return _readback(readback_line(fidelity, fidelity.skipped, fidelity.changes), bool(fidelity.changes), where)


def _readback(line: str, changes: bool, where: list[tuple[str, str, str]]) -> str:
    """The drill's lines for the CLI: its history line, where the changes are listed, what differs.

    Item and field only: the values are the user's data (the run's page shows them to the user).
    """
    said = f"  {line}{_NO_SILENT_LOSS if changes else ''}\n"
    if where:
        listed = "; ".join(" ".join(place) for place in where)
        said += f"  Differs: {listed}. Please report it: the archive is kept, as the best copy there is.\n"
    return said


# After the drill's line: where a user finds more (the differences are on the run's page, the changes in the archive).
_NO_SILENT_LOSS = ' (each change and its reason: manifest.json, "changes")'


def _export_and_deliver(
    email: str, user_id: int, files: ArchiveFiles, out: Path | None, vcard: str | None, check: bool
) -> None:
    outcome = _run_now(user_id, vcard, deliver=True)
    fidelity: ExportFidelity | None = None
    if outcome.archive_relpath is not None:
        filename = PurePosixPath(outcome.archive_relpath).name
        with get_db().session() as session:
            archive = session.scalar(select(Archive).where(Archive.relpath == outcome.archive_relpath))
            filename = archive.filename if archive is not None else filename
            fidelity = session.scalar(select(ExportFidelity).where(ExportFidelity.run_id == outcome.run_id))
        try:
            click.echo(_copy_out(files, outcome.archive_relpath, filename, out, check))
            click.echo(_stored_copy(out), nl=False)
        except _CopyFailed as failed:  # the run went on without it: say what it did
            place = files.local_path(outcome.archive_relpath) or f"{outcome.archive_relpath} in the archive store"
            raise click.ClickException(
                f"{failed.reason} The archive is kept on the server at {place}; "
                f"run {outcome.run_id} {outcome.state}: {outcome.message}"
            ) from None
        click.echo(_fidelity_lines(fidelity), nl=False)
        if check:
            click.echo(_CHECKED.rstrip("\n"))
    for destination in outcome.destinations:
        click.echo(f"  {destination.label}: {destination.outcome}. {destination.detail}".rstrip())
    if not outcome.destinations and outcome.delivered:
        click.echo(
            f"  {email} has no destinations: the archive is kept on Lifeboat's disk only. "
            "Add one with `lifeboat destination add-s3|add-email`."
        )
    if not outcome.delivered:
        raise click.ClickException(
            f"Run {outcome.run_id} {outcome.state}: {outcome.message} "
            "From here, run this command again once the problem is fixed."
        )
    done = "delivered" if outcome.destinations else "finished (nothing to deliver to)"
    click.echo(f"Run {outcome.run_id} {done}.")
    if fidelity is not None and fidelity.differences:
        raise SystemExit(1)  # delivered, but not everything came back: a cron script must notice, as without --deliver


VERIFY_MEMO = "verify-memo"  # in the instance folder
_CHECKED = "  Checked: every file parses with independent parsers and the figures match the manifest.\n"


class _CopyFailed(Exception):
    """The copy into --out could not be written or read back; `reason` is one sentence naming it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_out(out: Path) -> None:
    """Make --out (and its parents) and write a file there, so an unusable folder is refused before any export."""
    fix = "Give --out a folder this user can write to"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"--out {out}: the folder cannot be made ({exc.strerror or exc}). {fix}, or create it first."
        ) from None
    try:
        # A real write, not os.access: root passes os.access on a read-only file system or in /proc.
        with tempfile.TemporaryFile(dir=out, prefix=".lifeboat-probe-"):
            pass
    except OSError as exc:
        raise click.ClickException(
            f"--out {out}: cannot write there ({exc.strerror or exc}). {fix}, or change its permissions."
        ) from None


def _copy_out(files: ArchiveFiles, relpath: str, filename: str, out: Path | None, check: bool) -> Path | str:
    """Copy a stored archive into `out` (atomically, and read back); what to show as its place.

    Why only the read-back check on the copy: the export has read the archive
    back already, and the copy needs its checksums checked again, not every file
    parsed again (`check_archive` takes about as long as the export itself);
    `check` asks for that too.
    """
    if out is None:
        if check:
            with local_copy(files, relpath) as path:
                _independent_check(path)
        return files.local_path(relpath) or f"{relpath} in the archive store"
    out.mkdir(parents=True, exist_ok=True)
    target = out / filename
    remove_abandoned_partials(out, nested=False)  # what an export killed outright left here
    try:
        # A `partial_file`: a name of its own (another export of the same user in the same second copies to
        # the same `target`), owner-only as the archives in the instance folder, removed whatever happens.
        with partial_file(target) as partial:
            with files.open(relpath) as source, partial.open("r+b") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
            verify_archive(partial)  # the copy must verify too
            partial.replace(target)
    except OSError as exc:
        raise _CopyFailed(f"Cannot write the copy into {out}: {exc.strerror or exc}.") from None
    except ArchiveError as exc:
        raise _CopyFailed(f"The copy in {out} does not verify, so it was removed: {str(exc).rstrip('.')}.") from None
    if check:
        _independent_check(target)
    return target


def _independent_check(path: Path) -> None:
    """`verify`'s check of an archive just exported; any problem is a bug in Lifeboat, not in the data."""
    try:
        check_archive(path, memo_dir=_verify_memo_dir())
    except InvalidInput as exc:
        raise click.ClickException(f"{path}: the independent check found problems\n{exc}") from None
    except HelperFailed as exc:
        raise click.ClickException(f"{path}: not checked: {exc}. Run `lifeboat verify {path}` to try again.") from None


@click.command("archive-options")
@click.argument("email")
@click.option(
    "--vcard-version",
    type=click.Choice([*VCARD_VERSIONS, "default"]),
    default=None,
    help="vCard version of EMAIL's archives; 'default' follows the server's LIFEBOAT_VCARD_VERSION.",
)
@click.option(
    "--encrypt-to",
    "encrypt_to",
    metavar="KEY|FILE|off",
    default=None,
    help="Encrypt EMAIL's archives before delivery to this public key: an age key (age1…), an SSH public key, "
    "or a file holding either or an OpenPGP public key; 'off' stops encrypting.",
)
@with_appcontext
def archive_options_command(email: str, vcard_version: str | None, encrypt_to: str | None) -> None:
    """Show EMAIL's archive options, or change them (scheduled runs, export-all and export use them)."""
    off = encrypt_to is not None and encrypt_to.strip().lower() == "off"
    seal_text = None if encrypt_to is None else "" if off else _key_text(encrypt_to)
    with get_db().session(write=vcard_version is not None or seal_text is not None) as session:
        user = find_user(session, email)
        if user is None:
            raise no_user(email, IMPORT)
        was_sealed = bool(user.seal_key)
        try:
            change = ArchiveOptions(vcard_version=vcard_version, seal_key=seal_text)
            revoked = save_archive_options(session, user, change, now=utcnow())
        except InvalidInput as exc:
            field, words = exc.problems[0]
            option = {"seal_key": "--encrypt-to", "vcard_version": "--vcard-version"}.get(field, field)
            raise click.ClickException(f"{option}: {words}") from None
        chosen, (seal, problem) = user.vcard_version, seal_state(user)
    default = current_app.config["VCARD_VERSION"]
    if chosen is None:
        click.echo(f"vCard version: {default} (the server's default, LIFEBOAT_VCARD_VERSION)")
    else:
        click.echo(f"vCard version: {chosen} (chosen for {email})")
    if problem is not None:
        click.echo(f"Encrypted to: a key that can no longer be used ({problem}); nothing is delivered until it is "
                   "given again with --encrypt-to, or encryption is stopped with --encrypt-to off")  # fmt: skip
    elif seal is not None:
        expires = "" if seal.expires is None else f"; expires {seal.expires:%Y-%m-%d}"
        click.echo(f"Encrypted to: {seal.label} (before delivery{expires})")
        if (expiry := key_expiry(seal, utcnow())) is not None:
            click.echo(f"  Warning: {expiry.words}")
    else:
        click.echo("Encrypted to: nothing (plain zip files)")
        if off and was_sealed:
            click.echo(f"  {stopped_words(revoked)}")


def _key_text(value: str) -> str:
    """`--encrypt-to`'s key: the file's contents when VALUE names a file, else VALUE itself.

    Anything that looks like a path (a slash, or a key file's usual suffix) must be a readable file.
    """
    if not value.strip():
        raise click.BadParameter("give a public key, a file holding one, or off", param_hint="--encrypt-to")
    path = Path(value)
    pathlike = "/" in value or value.endswith((".pub", ".asc", ".gpg", ".txt", ".key"))
    if value.startswith(("age1", "ssh-")) or not (path.exists() or pathlike):
        return value
    if not path.exists():
        raise click.BadParameter(f"no such file: {value}", param_hint="--encrypt-to")
    try:
        data = path.read_bytes()[: MAX_KEY_TEXT + 1]
    except OSError as exc:
        raise click.ClickException(f"--encrypt-to: cannot read {value}: {exc.strerror}") from None
    try:
        return seal_key_from_bytes(data).text
    except SealKeyError as exc:
        raise click.ClickException(f"--encrypt-to: {value}: {exc}") from None


# What a stopped verify says to do (`errors.Stopped.again`): it writes no file, so nothing was changed.
VERIFY_AGAIN = "check the archive"


@click.command("verify")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--processes",
    type=click.IntRange(1, 2),
    default=None,
    help=f"Parse in 1 or 2 processes (default: 2 for an archive of {TWO_PROCESSES_FROM >> 20} MiB or more "
    "on two or more cores).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Parse every item, even those an earlier check verified with the same parser versions "
    "(what it finds is still remembered for the next check).",
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The signing key set to check the signature with: a saved copy of a service's "
    "/.well-known/lifeboat-signing-keys.json (default: this Lifeboat's own keys).",
)
@click.option(
    "--expect",
    "expect",
    default=None,
    metavar="SHA256",
    help="The SHA-256 of the whole file, e.g. from its delivery receipt; checked first.",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="NOT OK unless the archive carries a valid signature by a key of the key set.",
)
@stopped_says(VERIFY_AGAIN)  # it writes no archive file: nothing to remove, nothing half-done
@instance_if_any  # checking a file creates no instance: the service's keys and memo only if there is one
def verify_command(
    archive: Path,
    processes: int | None,
    fresh: bool,
    keys_file: Path | None,
    expect: str | None,
    require_signature: bool,
) -> None:
    """Check every checksum in ARCHIVE, its signature, and parse every file with an independent parser.

    A large archive is parsed in two processes, one per core; the report is the same.
    A signed archive whose manifest.json is not what the service signed (a file
    edited together with manifest.json and SHA256SUMS) is NOT OK; an unsigned one
    is checked on its checksums and said to be unsigned.
    Items (cards, event series, notes) whose exact bytes an earlier check parsed
    without a problem, with the same parser versions, are not parsed again: they
    are remembered by their SHA-256 in the instance folder (verify-memo/, safe to
    delete). The report is the same either way; --fresh parses everything.
    Where there is no instance folder nothing is created: the signature is
    checked with --keys only, and nothing is remembered.
    """
    keys = _verify_keys(keys_file)
    instance = has_app_context()
    # First: a receipt's archive SHA-256 is the decrypted file's, so it would not match.
    _refuse_sealed(archive, "lifeboat verify {plain}")
    if expect is not None:
        _check_expected_digest(archive, expect)
    try:
        memo = _verify_memo_dir() if instance else None
        report = check_archive(archive, processes=processes, memo_dir=memo, fresh=fresh, keys=keys)
        if require_signature and not report.signature.valid:
            raise InvalidInput(f"no valid signature, which --require-signature demands: {report.signature.line()}")
    except InvalidInput as exc:
        raise click.ClickException(f"{archive}: NOT OK: {_one_line(exc)}") from None
    except HelperFailed as exc:
        raise click.ClickException(
            f"{archive}: not checked: {exc}. Run this again, or with --processes 1 to check in one process."
        ) from None
    expected = "  file: SHA-256 as expected\n" if expect is not None else ""
    without = f"  {NO_INSTANCE}\n" if not instance and keys_file is None else ""
    signature = report.signature
    click.echo(f"{archive}: {signature.verdict}\n{expected}  {signature.line()}\n{without}{report.summary()}")
    if report.memo:
        hint = " (use --fresh to parse all)" if report.known else ""
        click.echo(f"  {report.memo_line()}{hint}")


def _one_line(exc: InvalidInput) -> str:
    """`exc` as one line for a command's error: its message, then each problem it lists, joined.

    Why: README promises one line naming the problem and the fix; `str(InvalidInput)` puts each
    problem on a line of its own (for import files with many), and `verify` printed its reason under
    "NOT OK" (user trial). A lone problem is said alone: "1 problem(s) found" adds nothing.
    """
    message = str(exc.args[0]) if exc.args else ""
    listed = [f"{where}: {what}" for where, what in exc.problems]
    if len(listed) == 1:
        return listed[0]
    return _joined([message, *listed]) if listed else message


def _joined(parts: Iterable[str]) -> str:
    """Sentences as one line: "a; b; c.", each full stop but the last dropped."""
    listed = [part.strip() for part in parts]
    return "; ".join([*(part.rstrip(".") for part in listed[:-1]), *listed[-1:]])


def _refuse_sealed(archive: Path, then: str) -> None:
    """An archive still encrypted to its owner's key is opened first, with the standard tool; say which.

    `then` is the command to run on the opened file (`{plain}` is its name). `restore` asks too: what a
    user has of an encrypted archive (the bucket's, the email's, a link's) is the encrypted file, and
    the zip reader's "not a readable ZIP archive; is it truncated?" sent a user trial looking for damage.
    """
    with archive.open("rb") as f:
        kind = sealed_kind(f.read(64))
    if kind is None:
        return
    command = decrypt_command(kind, archive.name)
    after = then.replace("{plain}", plain_name(archive.name))  # not format(): an address may hold braces
    raise click.ClickException(f"{archive}: encrypted to your key; open it first with `{command}`, then run `{after}`.")


def _verify_memo_dir() -> Path:
    """Where `verify` and `export --check` remember what they verified (`exporters.archive.check_memo`)."""
    return Path(current_app.instance_path) / VERIFY_MEMO


# What `verify` says where there is no instance folder (it created one, keys and database included: user trial).
NO_INSTANCE = (
    "No Lifeboat instance here: checked without the service's key (--keys takes a saved copy of the "
    "service's /.well-known/lifeboat-signing-keys.json)."
)


def _verify_keys(keys_file: Path | None) -> KeyRing | None:
    """The key set `verify` checks signatures with: the file given, else this instance's published set, if any."""
    if keys_file is not None:
        try:
            return read_key_ring(keys_file)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--keys") from None
    if not has_app_context():  # no instance folder: nothing of the service's to read, and none to create
        return None
    from jobs import get_context

    return get_context().signing_keys


def _check_expected_digest(archive: Path, expect: str) -> None:
    wanted = expect.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", wanted):
        raise click.BadParameter(f"{expect!r} is not a SHA-256 (64 hex digits)", param_hint="--expect")
    digest = hashlib.sha256()
    with archive.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    found = digest.hexdigest()
    if found != wanted:
        raise click.ClickException(
            f"{archive}: NOT OK: the file's SHA-256 is {found}, not the expected {wanted}: "
            "this is not the archive that was delivered, or it was changed since"
        )


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--email", required=True, help="The user to restore into (created if missing).")
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the data the account already holds (of the kinds the archive holds); without it, "
    "an account that holds data, or an existing account the archive was not made for, is left alone.",
)
@with_appcontext
def restore_command(archive: Path, email: str, replace: bool) -> None:
    """Read ARCHIVE back into the store as EMAIL's data (--replace for an account holding data or another's)."""
    try:
        email = canonical.email_address(email)
    except ValueError as exc:
        raise click.ClickException(f"--email: {exc}. Give the address of the account to restore into.") from None
    made_for = _archive_owner(archive)
    with get_db().session() as session:
        refuse_staff_data(session, email)
        existed = find_user(session, email) is not None
        held_before = data_held(session, email)
    held = None if replace else held_before
    if held is not None:  # asked first, so a refusal comes before the archive is read in full
        _refuse_replacing(HoldsData(email, held), made_for)
    if existed and not replace and made_for and made_for.lower() != email.lower():
        _refuse_other_owner(email, made_for)
    _refuse_sealed(archive, "lifeboat restore {plain} --email " + email + (" --replace" if replace else ""))
    try:
        restored = restore_archive(get_db(), archive, email, keys=_verify_keys(None), replace=replace)
    except HoldsData as exc:  # data arrived while the archive was read: still all or nothing
        _refuse_replacing(exc, made_for)
    except InvalidInput as exc:
        first, *rest = str(exc).splitlines() or [type(exc).__name__]
        raise click.ClickException("\n".join([f"{archive}: cannot restore: {first}", *rest])) from None
    # "replaced" only when something was there: an existing account that held nothing was restored into.
    kinds = ", ".join(restored.kinds) or "data"
    headline = (
        f"Restored {restored.email} (a new account with its {kinds})"
        if not existed
        else f"Restored {restored.email} (replaced its {kinds})"
        if held_before
        else f"Restored into {restored.email}, an account that held nothing ({kinds})"
    )
    click.echo(
        f"{headline}: {counts_line(restored.counts.as_dict(), restored.kinds or KINDS)}.\n  {restored.signature.line()}"
    )
    for line in restored.unkept.summary():  # never dropped silently: how many items, then which and what
        click.echo(f"  {line}")
    for line in restored.unkept.lines():
        click.echo(f"    {line}")
    if made_for and made_for != restored.email:
        click.echo(f"Note: the archive was made for {made_for}; its data is now {restored.email}'s.")


def _refuse_replacing(held: HoldsData, made_for: str | None) -> NoReturn:
    """One line: what the account holds, whose the archive is when not its, and the flag that replaces it.

    Why refuse: a typo in --email once replaced another user's data with no question asked (user trial).
    """
    other = f"; the archive was made for {made_for}, not {held.email}" if made_for and made_for != held.email else ""
    raise click.ClickException(
        f"{held.email} already holds {counts_line(held.counts.as_dict())}{other}. Nothing was changed: "
        "add --replace to replace its data with the archive's, or give another --email."
    )


def _refuse_other_owner(email: str, made_for: str) -> NoReturn:
    """One line: the account exists, the archive is someone else's, and the flag that restores it anyway.

    Why refuse even an empty account: it is a person's account, and another person's data put into it
    by a typo in --email is as wrong there as over data (user trial).
    """
    raise click.ClickException(
        f"{email} is an existing account and the archive was made for {made_for}. Nothing was changed: "
        f"add --replace to restore {made_for}'s archive into {email}, or give another --email."
    )


def _archive_owner(archive: Path) -> str | None:
    """Whose account the archive was made from, for the message only (the restore verifies it); None if unreadable."""
    try:
        return archive_owner(archive)
    except (ArchiveError, OSError, KeyError):
        return None


COMMANDS = [export_command, archive_options_command, verify_command, restore_command]


DEMO_EMAIL = "demo@lifeboat.example"
DEMO_PASSWORD = "lifeboat-demo"  # noqa: S105 - a published demo password for a local sandbox


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Create the demo account (rich sample data and a first archive) unless it exists."""
    from account.sample import demo_account
    from store.passwords import hash_password

    # The account and its schedule in one short write; the export reads afterwards, then records.
    with get_db().session(write=True) as session:
        refuse_staff_data(session, DEMO_EMAIL)
        user = find_user(session, DEMO_EMAIL)
        if user is None or user.data_updated_at is None:
            user = replace_account(session, demo_account(DEMO_EMAIL))
            user.password_hash = hash_password(DEMO_PASSWORD)
            session.flush()
            save_schedule(session, user, ScheduleChange(frequency="daily"), now=utcnow())
        user_id = user.id
        has_archive = session.scalar(select(Archive.id).where(Archive.user_id == user_id).limit(1)) is not None
    if not has_archive:
        from jobs import get_context
        from jobs.now import deliver_now

        # Through a run, as `export --deliver` does: History then lists the run that made the archive the
        # dashboard shows (a bare export made one History did not know: user trial).
        deliver_now(get_context(), user_id)
    click.echo(f"Demo account ready. {where_to_open()} and sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}")


def where_to_open() -> str:
    """Where the site is: LIFEBOAT_BASE_URL when the operator set it, else how to find the address.

    Why not always BASE_URL: its default (http://127.0.0.1:5000) is only a
    guess, and this command cannot know the port `lifeboat serve` (--port, 0
    for a free one) or gunicorn was started on; a wrong address sends people
    to nothing, so without a setting it says where the address is printed.
    """
    base = str(current_app.config["BASE_URL"]).rstrip("/")
    if base != str(BY_NAME["BASE_URL"].default).rstrip("/"):
        return f"Open {base}/"
    return "Open the address `lifeboat serve` prints (its line “Lifeboat on http://…”)"


COMMANDS.append(demo_command)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run one dispatch tick and exit (for cron or tests).")
@with_appcontext
def scheduler_command(once: bool) -> None:
    """Run the dispatcher: claim due schedules, requeue dead runs, hand runs to workers.

    Safe to run several copies for availability. With LIFEBOAT_CELERY_BROKER_URL
    set, runs go to Celery workers; otherwise this process also executes them.
    Stops cleanly on SIGTERM or Ctrl-C.
    """
    from jobs import get_context
    from jobs.scheduler_loop import Dispatcher

    if (refusal := startup_refusal(current_app.config)) is not None:
        raise click.ClickException(refusal)  # without a broker it runs exports: a server, refused as `serve` is
    warn_when_mailing(get_context())  # failure notices and missed-run alerts link to the site
    dispatcher = Dispatcher(current_app._get_current_object())  # type: ignore[attr-defined]  # flask types the proxy as Flask
    if once:
        click.echo(dispatcher.tick_once().describe())
        return
    click.echo("Dispatcher running; Ctrl-C or SIGTERM stops it.")
    dispatcher.run_forever()


@click.command("export-all")
@click.option("--workers", default=2, show_default=True, help="Exports to run in parallel.")
@click.option("--max-age-hours", type=int, default=None, help="Fresh enough (default: the upgrade guard's age).")
@with_appcontext
def export_all_command(workers: int, max_age_hours: int | None) -> None:
    """Give every active user a fresh verified archive (before an upgrade).

    Resumable: users who already have an archive newer than the age are
    skipped, so running it again after an interruption continues where it stopped.
    """
    from jobs.bulk import export_all

    hours = max_age_hours or current_app.config["UPGRADE_MAX_ARCHIVE_AGE_HOURS"]
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as Flask
    outcome = export_all(app, workers=workers, max_age_hours=hours)
    click.echo(outcome.describe())
    if outcome.failed:
        raise click.ClickException(f"{len(outcome.failed)} export(s) failed: " + ", ".join(outcome.failed[:10]))


@click.command("schedule")
@click.argument("email")
@click.option("--every", "frequency", type=click.Choice(["daily", "weekly", "monthly"]), help="How often.")
@click.option("--at", "time_of_day", metavar="HH:MM", help="Time of day in the schedule's zone (24-hour).")
@click.option("--timezone", metavar="ZONE", help="IANA zone, e.g. Europe/Berlin (default: the user's).")
@click.option("--weekday", type=click.Choice(WEEKDAYS), help="Day of the week (weekly).")
@click.option("--day", "day_of_month", type=int, metavar="1-31", help="Day of the month (monthly).")
@click.option("--off", is_flag=True, help="Switch scheduled exports off (archives are kept).")
@with_appcontext
def schedule_command(
    email: str,
    frequency: str | None,
    time_of_day: str | None,
    timezone: str | None,
    weekday: str | None,
    day_of_month: int | None,
    off: bool,
) -> None:
    """Show EMAIL's export schedule, or change it (any option given) and print the next run."""
    change = ScheduleChange(
        frequency=frequency,
        time_of_day=time_of_day,
        timezone=timezone,
        weekday=WEEKDAYS.index(weekday) if weekday else None,
        day_of_month=day_of_month,
    )
    changing = off or change != ScheduleChange()
    with get_db().session(write=changing) as session:
        user = find_user(session, email)
        if user is None:
            raise no_user(email, IMPORT)
        if off:
            switch_off(session, user)
        elif change != ScheduleChange():
            try:
                save_schedule(session, user, change, now=utcnow())
            except InvalidInput as exc:
                # Each problem once, by the option to change: the summary repeated the field's words (user trial).
                said = _joined(f"{_SCHEDULE_OPTIONS.get(field, field)}: {what}" for field, what in exc.problems)
                raise click.ClickException(said or _one_line(exc)) from None
        click.echo(describe(find_schedule(session, user)))


# `schedule`'s options by the schedule field each sets (`jobs.schedule` names its problems by field).
_SCHEDULE_OPTIONS = {
    "frequency": "--every",
    "time_of_day": "--at",
    "timezone": "--timezone",
    "weekday": "--weekday",
    "day_of_month": "--day",
}


COMMANDS += [scheduler_command, export_all_command, schedule_command]


@click.command("import-account")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_account_command(file: Path) -> None:
    """Load an account JSON file (account.schema.json), replacing that user's data.

    Nothing changes unless the whole file is valid; every problem is reported
    with its JSON path.
    """
    try:
        loaded = load_account(file.read_bytes())
    except InvalidInput as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    account = loaded.account
    with get_db().session(write=True) as session:
        refuse_staff_data(session, account.email)
        replace_account(session, account)
    click.echo(f"Imported {account.email}: {counts_line(account_counts(account))}.")  # as export and restore say
    for path in loaded.replaced:
        click.echo(f"  {path}: U+0000 replaced with U+FFFD (no database or Markdown file can hold it)")
    for path in loaded.without_controls[:_CONTROLS_LISTED]:
        click.echo(f"  {path}: control characters removed (no vCard, iCalendar or YAML text can carry them)")
    if len(loaded.without_controls) > _CONTROLS_LISTED:
        more = len(loaded.without_controls) - _CONTROLS_LISTED
        click.echo(f"  ... and {more:,} more fields with control characters removed")


_CONTROLS_LISTED = 50  # fields named one by one; past that, counted


COMMANDS.insert(0, import_account_command)
COMMANDS += DESTINATION_COMMANDS + USER_COMMANDS + SUPPORT_COMMANDS + SCRUB_COMMANDS + SIGNING_KEY_COMMANDS
COMMANDS += VERSION_COMMANDS + GENERATED_ACCOUNT_COMMANDS


@click.command("upgrade")
@click.option("--force", is_flag=True, help="Migrate even if some users lack a fresh verified archive.")
@with_appcontext
def db_upgrade_command(force: bool) -> None:
    """Migrate the database to the newest schema.

    Refuses while any active user lacks a verified archive newer than
    LIFEBOAT_UPGRADE_MAX_ARCHIVE_AGE_HOURS: an upgrade must never be the moment
    the only copy is lost. Run `lifeboat export-all` first.
    """
    database = get_db()
    if not migrate.pending(database):
        click.echo(f"Database is up to date (revision {migrate.current_revision(database)}).")
        return
    if not force and inspect(database.engine).has_table("users"):
        max_age = dt.timedelta(hours=current_app.config["UPGRADE_MAX_ARCHIVE_AGE_HOURS"])
        missing = users_without_fresh_archive(database, max_age)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise click.ClickException(
                f"{len(missing)} active user(s) have no verified archive newer than {max_age}: {shown}.\n"
                "Run `lifeboat export-all` first (or pass --force if you accept the risk)."
            )
    migrate.upgrade(database)
    click.echo(f"Database upgraded to revision {migrate.current_revision(database)}.")
