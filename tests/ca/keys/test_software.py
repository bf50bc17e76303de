"""The software key backend: CA keys as encrypted PKCS#8 files, never plaintext."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.ca import CaKeyError
from certfleet.ca.keys import SoftwareKeyBackend, load_or_create_passphrase
from certfleet.x509 import KeyType

PASSPHRASE = b"correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.ED25519, KeyType.RSA_2048], ids=str)
def test_created_key_is_encrypted_pkcs8_readable_only_by_the_owner(tmp_path: Path, key_type: KeyType) -> None:
    backend = SoftwareKeyBackend(tmp_path / "keys", PASSPHRASE)
    ref = backend.create("root", key_type)
    files = list((tmp_path / "keys").iterdir())
    assert [f.name for f in files] == [f"{ref}.key.pem"]
    data = files[0].read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")  # PKCS#8 EncryptedPrivateKeyInfo
    assert _mode(files[0]) == 0o600
    assert _mode(tmp_path / "keys") == 0o700
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(data, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(data, password=b"wrong")
    direct = serialization.load_pem_private_key(data, password=PASSPHRASE)
    assert backend.load(ref).public_key() == direct.public_key()


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    ref = SoftwareKeyBackend(tmp_path, PASSPHRASE).create("root", KeyType.EC_P256)
    with pytest.raises(CaKeyError, match="wrong passphrase or damaged file"):
        SoftwareKeyBackend(tmp_path, b"not it").load(ref)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(CaKeyError, match="cannot read CA key"):
        SoftwareKeyBackend(tmp_path, PASSPHRASE).load("root-00000000")


@pytest.mark.parametrize("ref", ["../etc/passwd", ".hidden", "a/b"])
def test_key_references_cannot_leave_the_directory(tmp_path: Path, ref: str) -> None:
    with pytest.raises(CaKeyError, match="bad key reference"):
        SoftwareKeyBackend(tmp_path, PASSPHRASE).load(ref)


def test_delete_removes_the_file(tmp_path: Path) -> None:
    backend = SoftwareKeyBackend(tmp_path, PASSPHRASE)
    ref = backend.create("issuing-1", KeyType.EC_P256)
    backend.delete(ref)
    assert list(tmp_path.iterdir()) == []


def test_passphrase_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "ca-passphrase"
    first = load_or_create_passphrase(path, create=True)
    assert _mode(path) == 0o600
    assert len(first) >= 43  # 32 random bytes, base64url
    assert load_or_create_passphrase(path, create=True) == first
    assert load_or_create_passphrase(path, create=False) == first


def test_missing_passphrase_is_not_invented_without_create(tmp_path: Path) -> None:
    with pytest.raises(CaKeyError, match="is missing"):
        load_or_create_passphrase(tmp_path / "ca-passphrase", create=False)
    assert not (tmp_path / "ca-passphrase").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_passphrase_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ca-passphrase"
    path.write_bytes(b"secret\n")
    path.chmod(mode)
    with pytest.raises(CaKeyError, match="readable by others"):
        load_or_create_passphrase(path, create=False)


def test_empty_passphrase_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ca-passphrase"
    path.write_bytes(b"\n")
    path.chmod(0o600)
    with pytest.raises(CaKeyError, match="is empty"):
        load_or_create_passphrase(path, create=False)
