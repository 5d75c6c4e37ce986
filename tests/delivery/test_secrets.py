"""Secrets at rest: encrypted with the newest configured key, readable through rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.secrets import SecretBox, SecretDecryptError, SecretKeyError
from tests.profiles import examples

OLD, NEW = SecretBox.generate_key(), SecretBox.generate_key()


@settings(max_examples=examples(100), deadline=None)
@given(st.text())
def test_it_round_trips_any_text(secret: str) -> None:
    box = SecretBox([NEW])
    token = box.encrypt(secret)
    assert box.decrypt(token) == secret
    assert token.isascii()
    if len(secret) >= 8:  # short strings turn up in any base64 text by chance
        assert secret not in token


def test_it_never_produces_the_same_token_twice() -> None:
    box = SecretBox([NEW])
    assert box.encrypt("s3cr3t") != box.encrypt("s3cr3t")


def test_it_reads_tokens_made_with_an_older_key_during_rotation() -> None:
    old_token = SecretBox([OLD]).encrypt("wJalrXUtnFEMI/K7MDENG")
    rotating = SecretBox.from_setting(f"{NEW}, {OLD}")
    assert rotating.decrypt(old_token) == "wJalrXUtnFEMI/K7MDENG"
    rotated = rotating.rotate(old_token)
    assert SecretBox([NEW]).decrypt(rotated) == "wJalrXUtnFEMI/K7MDENG"
    with pytest.raises(SecretDecryptError):
        SecretBox([OLD]).decrypt(rotated)


def test_it_encrypts_with_the_first_key() -> None:
    token = SecretBox([NEW, OLD]).encrypt("x")
    assert Fernet(NEW).decrypt(token.encode()) == b"x"


def test_it_says_what_to_do_when_no_key_is_configured() -> None:
    empties: list[str | list[str] | None] = [None, "", " , ", []]
    for empty in empties:
        with pytest.raises(SecretKeyError, match="LIFEBOAT_ENCRYPTION_KEYS is empty"):
            SecretBox.from_setting(empty)


def test_it_rejects_a_malformed_key_without_echoing_it() -> None:
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_setting(f"{NEW} not-a-real-fernet-key-value")
    assert "Key 2 in LIFEBOAT_ENCRYPTION_KEYS is not a Fernet key" in str(caught.value)
    assert "not-a-real-fernet-key-value" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("token", ["", "garbage", "gAAAAA" + "A" * 80, "tökén"])
def test_it_explains_a_token_that_cannot_be_decrypted(token: str) -> None:
    with pytest.raises(SecretDecryptError, match=r"cannot be decrypted|not a valid encrypted token"):
        SecretBox([NEW]).decrypt(token)


def test_it_detects_a_tampered_token() -> None:
    box = SecretBox([NEW])
    token = box.encrypt("secret")
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(SecretDecryptError):
        box.decrypt(tampered)


def test_it_keeps_keys_out_of_its_repr() -> None:
    box = SecretBox([NEW, OLD])
    assert repr(box) == "<SecretBox keys=2>"
