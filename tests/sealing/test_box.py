"""Sealed values: AES-256-GCM envelopes that open only under their key, in their row."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest

from certfleet.sealing import (
    RowRef,
    SecretBox,
    SecretsKeyError,
    UnsealError,
    envelope_key_id,
    load_or_create_secrets_key,
)

ROW = RowRef("notification_channels", "options_json", "c1")
SECRET = b"smtp-password-correct-horse"


def test_a_sealed_value_opens_in_its_row_and_hides_the_plaintext() -> None:
    box = SecretBox(secrets.token_bytes(32))
    sealed = box.seal(SECRET, ROW)
    assert sealed.startswith(f"v1:{box.key_id}:")
    assert SECRET.decode() not in sealed and base64.b64encode(SECRET).decode() not in sealed
    assert box.seal(SECRET, ROW) != sealed  # a fresh random nonce each time
    assert box.open(sealed, ROW) == SECRET
    assert envelope_key_id(sealed) == box.key_id


@pytest.mark.parametrize(
    "elsewhere",
    [
        RowRef("notification_channels", "options_json", "c2"),  # another row
        RowRef("notification_channels", "secret", "c1"),  # another column
        RowRef("acme_eab_keys", "hmac_key", "c1"),  # another table
    ],
)
def test_a_sealed_value_moved_elsewhere_does_not_open(elsewhere: RowRef) -> None:
    box = SecretBox(secrets.token_bytes(32))
    with pytest.raises(UnsealError, match="altered or moved from another row"):
        box.open(box.seal(SECRET, ROW), elsewhere)


def test_an_altered_or_malformed_value_does_not_open() -> None:
    box = SecretBox(secrets.token_bytes(32))
    sealed = box.seal(SECRET, ROW)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(UnsealError, match="does not authenticate"):
        box.open(flipped, ROW)
    with pytest.raises(UnsealError, match="not a sealed value"):
        box.open('{"url": "https://hooks.example.test"}', ROW)
    with pytest.raises(UnsealError, match="not a well-formed"):
        box.open(f"v1:{box.key_id}:AAAA", ROW)


def test_another_key_is_named_as_such_not_as_tampering() -> None:
    sealed = SecretBox(secrets.token_bytes(32)).seal(SECRET, ROW)
    other = SecretBox(secrets.token_bytes(32))
    with pytest.raises(SecretsKeyError, match=f"sealed with secrets key {envelope_key_id(sealed)}"):
        other.open(sealed, ROW)


def test_the_key_file_is_made_once_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secrets.key"
    made = load_or_create_secrets_key(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(base64.urlsafe_b64decode(path.read_bytes().strip())) == 32
    again = load_or_create_secrets_key(path, create=False)
    assert again.key_id == made.key_id
    assert again.open(made.seal(SECRET, ROW), ROW) == SECRET
    assert "key" not in repr(made).replace("key_id", "")  # the repr never shows the key


def test_a_bad_key_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    with pytest.raises(SecretsKeyError, match="is missing"):
        load_or_create_secrets_key(path, create=False)
    path.write_bytes(base64.urlsafe_b64encode(secrets.token_bytes(32)))
    os.chmod(path, 0o640)
    with pytest.raises(SecretsKeyError, match="readable by others: chmod 600"):
        load_or_create_secrets_key(path, create=False)
    os.chmod(path, 0o600)
    for content in (b"", b"not base64 at all!", base64.urlsafe_b64encode(b"short")):
        path.write_bytes(content)
        with pytest.raises(SecretsKeyError, match="is not a certfleet secrets key"):
            load_or_create_secrets_key(path, create=False)
