"""CA keys are never plaintext on disk: encrypted PKCS#8, 0600, under a 0600 passphrase
file in the data dir or the one CERTFLEET_CA_PASSPHRASE_FILE names."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from certfleet.store import Database
from tests.conftest import Cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ca_public_keys(cli: Cli) -> set[bytes]:
    database = Database(cli.db_url)
    try:
        with database.engine.connect() as conn:
            ders = conn.execute(text("SELECT certificate_der FROM certificate_authorities")).scalars().all()
    finally:
        database.dispose()
    return {
        x509.load_der_x509_certificate(d)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for d in ders
    }


def _public(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _assert_encrypted_keys(cli: Cli, passphrase: bytes) -> None:
    keys = sorted((cli.data_dir / "keys").glob("*.key.pem"))
    assert len(keys) == 2
    assert _mode(cli.data_dir / "keys" / "secrets.key") == 0o600  # the key sealing stored secrets
    assert _mode(cli.data_dir / "keys") == 0o700
    loaded = set()
    for path in keys:
        data = path.read_bytes()
        assert _mode(path) == 0o600, path
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN EC PRIVATE KEY" not in data
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(data, password=None)
        loaded.add(_public(serialization.load_pem_private_key(data, password=passphrase)))
    assert loaded == _ca_public_keys(cli)


def test_ca_keys_are_encrypted_pkcs8_under_a_0600_passphrase(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    passphrase_file = cli.data_dir / "ca-passphrase"
    assert _mode(passphrase_file) == 0o600
    assert _mode(cli.data_dir) == 0o700
    _assert_encrypted_keys(cli, passphrase_file.read_bytes().strip())


def test_no_private_key_reaches_the_database(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    assert cli("issue", "--san", "www.example.com", "--out", str(tmp_path / "out")).exit_code == 0
    database = Database(cli.db_url)
    try:
        with database.engine.connect() as conn:
            for table in ("certificate_authorities", "certificates", "audit_log", "serials"):
                for row in conn.execute(text(f"SELECT * FROM {table}")):
                    blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
                    assert b"PRIVATE KEY" not in blob, table
    finally:
        database.dispose()
    if cli.db_url.startswith("sqlite"):
        assert b"PRIVATE KEY" not in (cli.data_dir / "certfleet.db").read_bytes()


def test_passphrase_file_from_the_environment_is_created_and_used(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "secrets" / "ca.pass"
    monkeypatch.setenv("CERTFLEET_CA_PASSPHRASE_FILE", str(elsewhere))
    assert cli("init").exit_code == 0
    assert _mode(elsewhere) == 0o600
    assert not (cli.data_dir / "ca-passphrase").exists()
    _assert_encrypted_keys(cli, elsewhere.read_bytes().strip())
    assert cli("issue", "--san", "a.example.com", "--out", str(tmp_path / "a")).exit_code == 0
    # Without the variable the CA cannot sign, and says why.
    monkeypatch.delenv("CERTFLEET_CA_PASSPHRASE_FILE")
    result = cli("issue", "--san", "b.example.com", "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert "CERTFLEET_CA_PASSPHRASE_FILE" in result.stderr and result.stderr.count("\n") == 1


def test_an_existing_passphrase_file_from_the_environment_is_honoured(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "my.pass"
    mine.write_bytes(b"an operator-chosen passphrase\n")
    mine.chmod(0o600)
    monkeypatch.setenv("CERTFLEET_CA_PASSPHRASE_FILE", str(mine))
    assert cli("init").exit_code == 0
    assert mine.read_bytes() == b"an operator-chosen passphrase\n"  # not replaced
    _assert_encrypted_keys(cli, b"an operator-chosen passphrase")


def test_a_world_readable_passphrase_file_is_refused(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loose = tmp_path / "loose.pass"
    loose.write_bytes(b"secret\n")
    loose.chmod(0o644)
    monkeypatch.setenv("CERTFLEET_CA_PASSPHRASE_FILE", str(loose))
    result = cli("init")
    assert result.exit_code == 2
    assert "readable by others: chmod 600 it" in result.stderr
    keys = cli.data_dir / "keys"
    assert not keys.exists() or list(keys.iterdir()) == []


def test_generated_leaf_key_is_0600_and_public_files_are_not(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    out = tmp_path / "out"
    assert cli("issue", "--san", "www.example.com", "--out", str(out)).exit_code == 0
    assert _mode(out / "key.pem") == 0o600
    for name in ("cert.pem", "chain.pem", "fullchain.pem"):
        assert _mode(out / name) == 0o644, name
