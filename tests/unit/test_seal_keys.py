"""Giving Lifeboat a key to encrypt to: public keys are taken, private and damaged ones refused in one line.

The same rules hold on the settings page (tests/web/test_settings.py), in the
JSON API (tests/api/test_options.py) and on the command line, here
(`jobs.archive_options`, `delivery.sealing`); a refused key changes nothing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pyrage
import pytest
from flask.testing import FlaskCliRunner

from account.records import Account
from delivery.sealing import SealKeyError, parse_seal_key, seal_file, seal_key_from_bytes
from store import Database, User
from store.accounts import replace_account
from tests.conftest import OpenPGPKeyMaker, UserKey


@pytest.fixture
def ssh_public_key(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    return (tmp_path / "id.pub").read_text().strip()


def test_age_ssh_and_openpgp_public_keys_are_taken_and_named_as_people_compare_them(
    age_key: UserKey, openpgp_key: UserKey, ssh_public_key: str
) -> None:
    age = parse_seal_key(f"# my laptop\n{age_key.public}\n")
    assert (age.kind, age.suffix, age.text) == ("age", ".age", age_key.public)
    assert age.label == f"age key {age_key.public[:10]}…{age_key.public[-6:]}"
    ssh = parse_seal_key(ssh_public_key)
    assert ssh.kind == "age" and ssh.label.startswith("SSH key ssh-ed25519 …")
    both = parse_seal_key(f"{age_key.public}\n{ssh_public_key}")
    assert both.label.endswith(" and 1 more")
    pgp = parse_seal_key(openpgp_key.public)
    assert (pgp.kind, pgp.suffix) == ("openpgp", ".gpg") and pgp.label.endswith("(Alice <alice@example.com>)")
    assert "PRIVATE" not in pgp.text


def _gpg(key: UserKey, *args: str) -> bytes:
    done = subprocess.run([*key.decrypt[:-1], *args], env=key.env, check=True, capture_output=True)
    return done.stdout


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Give an age public key"),
        ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "your private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "SSH private key"),
        ("age1" + "q" * 58, "damaged"),  # its checksum does not hold
        ("hello there", "not a public key Lifeboat can encrypt to"),
        ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ\n-----END PGP PUBLIC KEY BLOCK-----", "could not be read"),
        ("age1" + "q" * 70_000, "too long for a public key"),
    ],
)
def test_a_key_that_cannot_be_used_is_refused_in_one_line_that_says_what_to_give(text: str, words: str) -> None:
    with pytest.raises(SealKeyError) as refused:
        parse_seal_key(text)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_openpgp_private_keys_armored_or_binary_are_refused_and_binary_public_ones_taken(openpgp_key: UserKey) -> None:
    armored = _gpg(openpgp_key, "--armor", "--export-secret-keys", "alice@example.com")
    binary = _gpg(openpgp_key, "--export-secret-keys", "alice@example.com")
    for secret in (armored, binary):
        with pytest.raises(SealKeyError, match="OpenPGP private key"):
            seal_key_from_bytes(secret)
    public = seal_key_from_bytes(_gpg(openpgp_key, "--export", "alice@example.com"))
    assert public.kind == "openpgp" and public.text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_the_command_line_takes_a_key_or_a_key_file_and_off(
    runner: FlaskCliRunner, db: Database, alice: Account, age_key: UserKey, openpgp_key: UserKey, tmp_path: Path
) -> None:
    with db.session(write=True) as session:
        alice_user = replace_account(session, alice).id
    given = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", age_key.public])
    assert given.exit_code == 0 and "Encrypted to: age key age1" in given.output
    key_file = tmp_path / "alice.asc"
    key_file.write_text(openpgp_key.public)
    from_file = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", str(key_file)])
    assert from_file.exit_code == 0 and "Encrypted to: OpenPGP key" in from_file.output
    refused = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", "AGE-SECRET-KEY-1X"])
    assert refused.exit_code == 1 and "--encrypt-to: That is an age identity" in refused.output
    assert "Traceback" not in refused.output
    with db.session() as session:
        assert "BEGIN PGP PUBLIC KEY BLOCK" in (session.get(User, alice_user).seal_key or "")  # type: ignore[union-attr]
    off = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", "off"])
    assert off.exit_code == 0 and "Encrypted to: nothing (plain zip files)" in off.output


@pytest.mark.parametrize("which", ["age", "openpgp"])
def test_verify_of_a_still_encrypted_archive_says_how_to_open_it_first(
    runner: FlaskCliRunner, tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    key = parse_seal_key(request.getfixturevalue(f"{which}_key").public)
    plain = tmp_path / "lifeboat-alice-20261207T020000Z.zip"
    plain.write_bytes(b"PK\x05\x06" + bytes(18))
    sealed = seal_file(plain, tmp_path / (plain.name + key.suffix), key).path
    result = runner.invoke(args=["verify", str(sealed)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"encrypted to your key; open it first with `{key.decrypt_hint(sealed.name)}`" in result.output
    assert f"then run `lifeboat verify {plain.name}`" in result.output
    # The receipt's archive SHA-256 is the decrypted file's: given with the sealed file, "open it first" still.
    expected = runner.invoke(args=["verify", str(sealed), "--expect", "0" * 64])
    assert expected.exit_code == 1 and "open it first" in expected.output


@pytest.mark.parametrize("which", ["age", "openpgp"])
def test_restore_of_a_still_encrypted_archive_says_how_to_open_it_first(
    runner: FlaskCliRunner, db: Database, tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    key = parse_seal_key(request.getfixturevalue(f"{which}_key").public)
    plain = tmp_path / "lifeboat-alice-20261207T020000Z.zip"
    plain.write_bytes(b"PK\x05\x06" + bytes(18))
    sealed = seal_file(plain, tmp_path / (plain.name + key.suffix), key).path
    result = runner.invoke(args=["restore", str(sealed), "--email", "alice.copy@example.com"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "not a readable ZIP archive" not in result.output
    assert f"encrypted to your key; open it first with `{key.decrypt_hint(sealed.name)}`" in result.output
    assert f"then run `lifeboat restore {plain.name} --email alice.copy@example.com`" in result.output
    with db.session() as session:
        assert session.query(User).filter_by(email="alice.copy@example.com").first() is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("/no/such/folder/key.pub", "no such file: /no/such/folder/key.pub"),
        ("", "give a public key, a file holding one, or off"),
        ("age1yubikey1q" + "q" * 58, "a key for an age plugin"),
    ],
)
def test_encrypt_to_names_a_missing_file_an_empty_value_and_a_plugin_key_for_what_they_are(
    runner: FlaskCliRunner, db: Database, alice: Account, value: str, words: str
) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    refused = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", value])
    assert refused.exit_code != 0 and words in refused.output and "Traceback" not in refused.output


def test_off_in_any_case_stops_and_a_stored_key_that_no_longer_parses_is_shown_as_such(
    runner: FlaskCliRunner, db: Database, alice: Account, age_key: UserKey
) -> None:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        user.seal_key = "age1broken"
    shown = runner.invoke(args=["archive-options", "alice@example.com"])
    assert "Encrypted to: a key that can no longer be used (That age or SSH public key is damaged" in shown.output
    off = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", "OFF"])
    assert off.exit_code == 0 and "Encrypted to: nothing (plain zip files)" in off.output
    assert "no longer encrypted" in off.output


def test_a_keyring_is_refused_as_more_than_one_key_and_control_characters_leave_a_user_id(
    openpgp_key: UserKey,
) -> None:
    with pytest.raises(SealKeyError, match="That is 2 OpenPGP keys: give one"):
        parse_seal_key(openpgp_key.public + openpgp_key.public)
    import pysequoia

    made = pysequoia.Tsk.generate("Eve \x1b[31mRED\x00NUL\r\nX: y <eve@example.com>")
    label = parse_seal_key(str(made.extract_certificate())).label
    assert "Eve [31mREDNULX: y <eve@example.com>" in label
    assert not any(ch in label for ch in "\x1b\x00\r\n")


def test_downgrading_below_sealed_archives_is_refused_while_a_user_has_a_key(
    db: Database, alice: Account, age_key: UserKey
) -> None:
    from alembic.util import CommandError

    from store import migrate

    with db.session(write=True) as session:
        replace_account(session, alice).seal_key = age_key.public
    with pytest.raises(CommandError, match="1 user\\(s\\) have archives encrypted to their key"):
        migrate.downgrade(db, "0014")
    assert migrate.current_revision(db) == migrate.head_revision(db)
    with db.session(write=True) as session:
        for user in session.query(User):
            user.seal_key = None
    migrate.downgrade(db, "0014")
    migrate.upgrade(db)


@pytest.mark.slow  # real gpg keys or real processes: CI's whole suite, not test-fast
def test_an_openpgp_keys_expiry_is_its_primary_keys_or_its_encryption_subkeys_when_sooner(
    openpgp_key: UserKey, age_key: UserKey, openpgp_key_expiring: OpenPGPKeyMaker
) -> None:
    now = dt.datetime.now(dt.UTC)
    assert parse_seal_key(openpgp_key.public).expires is None  # made with "never"
    ten_days = parse_seal_key(openpgp_key_expiring("10d")).expires
    assert ten_days is not None and abs(ten_days - (now + dt.timedelta(days=10))) < dt.timedelta(minutes=5)
    subkey_first = parse_seal_key(openpgp_key_expiring("1y", encryption="5d")).expires  # only the subkey encrypts
    assert subkey_first is not None and abs(subkey_first - (now + dt.timedelta(days=5))) < dt.timedelta(minutes=5)
    expired = parse_seal_key(openpgp_key_expiring("1y", made="20200101T000000")).expires
    assert expired == dt.datetime(2020, 12, 31, tzinfo=dt.UTC)
    assert parse_seal_key(age_key.public).expires is None  # age keys never expire


@pytest.mark.slow  # real gpg keys or real processes: CI's whole suite, not test-fast
def test_an_expired_key_is_refused_in_one_line_naming_date_and_fix_and_one_expiring_soon_taken_with_a_warning(
    runner: FlaskCliRunner, db: Database, alice: Account, openpgp_key_expiring: OpenPGPKeyMaker, tmp_path: Path
) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    expired = tmp_path / "expired.asc"
    expired.write_text(openpgp_key_expiring("1y", made="20200101T000000"))
    refused = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", str(expired)])
    assert refused.exit_code == 1
    (line,) = refused.output.splitlines()
    assert line.startswith("Error: --encrypt-to: That OpenPGP key ") and "expired on 2020-12-31" in line
    assert "gpg --quick-set-expire " in line and "export it again and give it here" in line
    with db.session() as session:
        assert session.query(User).filter_by(email="alice@example.com").one().seal_key is None
    soon = tmp_path / "soon.asc"
    soon.write_text(openpgp_key_expiring("10d"))
    date = f"{dt.datetime.now(dt.UTC) + dt.timedelta(days=10):%Y-%m-%d}"
    taken = runner.invoke(args=["archive-options", "alice@example.com", "--encrypt-to", str(soon)])
    assert taken.exit_code == 0, taken.output
    assert f"(before delivery; expires {date})" in taken.output
    assert "  Warning: Your OpenPGP key " in taken.output and f"expires on {date}: from then on" in taken.output


def test_keys_pasted_on_one_line_are_refused_as_such_never_as_an_age_plugin_key(
    age_key: UserKey, ssh_public_key: str
) -> None:
    other = str(pyrage.x25519.Identity.generate().to_public())
    for text, words in (
        (f"{age_key.public} {age_key.public}", "That line holds the same key twice: give each key once, one key per"),
        (f"{age_key.public}\t{other}", "That line holds 2 keys: give each key once, one key per line."),
        (f"{ssh_public_key} {age_key.public}", "That line holds 2 keys"),
        (f"# mine\n{other}\n{age_key.public} {age_key.public}", "the same key twice: give each key once, one key per"),
    ):
        with pytest.raises(SealKeyError) as refused:
            parse_seal_key(text)
        assert words in str(refused.value) and "plugin" not in str(refused.value), text


def test_the_same_key_on_two_lines_is_refused_in_words_and_one_stored_before_keeps_working_once(
    age_key: UserKey, ssh_public_key: str
) -> None:
    with pytest.raises(SealKeyError) as refused:
        parse_seal_key(f"{age_key.public}\n\n{age_key.public}\n")
    assert str(refused.value) == (
        f"That gives the same key twice (age key {age_key.public[:10]}…{age_key.public[-6:]}): "
        "give each key once, one per line."
    )
    renamed = ssh_public_key.rsplit(" ", 1)[0] + " another-comment"  # the same SSH key, whatever its comment
    with pytest.raises(SealKeyError, match="the same key twice \\(SSH key ssh-ed25519"):
        parse_seal_key(f"{ssh_public_key}\n{renamed}")
    kept = parse_seal_key(f"{age_key.public}\n{age_key.public}", stored=True)  # saved before the check
    assert (kept.text, kept.label) == (age_key.public, f"age key {age_key.public[:10]}…{age_key.public[-6:]}")


def test_a_cut_off_openpgp_key_is_told_in_plain_words_with_the_command_to_export_it_whole(
    openpgp_key: UserKey,
) -> None:
    lines = openpgp_key.public.splitlines()
    for text, why in (
        (openpgp_key.public[:300], "it looks cut off (its END line is missing)"),
        ("\n".join([*lines[:4], *lines[-2:]]), "it looks cut off, or it is not one public key"),
    ):
        with pytest.raises(SealKeyError) as refused:
            parse_seal_key(text)
        assert str(refused.value) == (
            f"That OpenPGP key could not be read: {why}. Paste the whole output of "
            "gpg --armor --export you@example.org, from its BEGIN line to its END line."
        )
