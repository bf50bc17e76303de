"""`certfleet init` and `certfleet ca list|root`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from certfleet.x509 import KeyType
from tests.conftest import Cli


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_init_creates_the_hierarchy_and_ca_list_shows_it(cli: Cli) -> None:
    result = cli("init", "--ca-name", "Example")
    assert result.exit_code == 0, result.stderr
    assert "Root CA:        Example Root CA" in result.stdout
    assert "Issuing CA:     Example Issuing CA 1" in result.stdout
    listed = json.loads(cli("ca", "list", "--format", "json").stdout)
    assert [(c["role"], c["name"], c["key"], c["active"]) for c in listed] == [
        ("root", "Example Root CA", "ec-p256", True),
        ("intermediate", "Example Issuing CA 1", "ec-p256", True),
    ]
    assert listed[1]["parent"] == listed[0]["id"]
    for ca in listed:
        assert ca["not_before"].endswith("Z") and ca["not_after"].endswith("Z")
    table = cli("ca", "list")
    assert table.exit_code == 0
    assert listed[0]["id"] in table.stdout and listed[1]["id"] in table.stdout


def test_ca_root_prints_the_root_pem(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    root_pem = cli("ca", "root").stdout
    root = x509.load_pem_x509_certificate(root_pem.encode())
    assert root.issuer == root.subject
    assert root_pem.count("BEGIN CERTIFICATE") == 1


@pytest.mark.parametrize("key_type", list(KeyType), ids=str)
def test_every_key_type(capsys: pytest.CaptureFixture[str], tmp_path: Path, key_type: KeyType) -> None:
    # SQLite only: key generation does not touch the database, and RSA-4096 is slow enough.
    data_dir = tmp_path / "data"
    cli = Cli(capsys, data_dir, f"sqlite:///{data_dir / 'certfleet.db'}")
    assert cli("init", "--key-type", key_type.value.upper()).exit_code == 0
    listed = json.loads(cli("ca", "list", "--format", "json").stdout)
    hierarchy = [c["key"] for c in listed if c["role"] in ("root", "intermediate")]
    assert hierarchy == [key_type.value, key_type.value]
    # Over an ML-DSA root the HTTPS listener gets a classic root of its own (OpenSSL 3.0
    # cannot load an ML-DSA chain); a classic hierarchy gets nothing more.
    listener = [(c["role"], c["key"]) for c in listed if c["role"] not in ("root", "intermediate")]
    assert listener == ([("tls-root", "ec-p256")] if key_type.post_quantum else [])


def test_an_ml_dsa_init_prints_both_fingerprints_and_which_one_to_pin(cli: Cli) -> None:
    out = cli("init", "--key-type", "ml-dsa-65").stdout
    listed = json.loads(cli("ca", "list", "--format", "json").stdout)
    pems = {c["role"]: json.loads(cli("ca", "show", c["id"], "--format", "json").stdout) for c in listed}

    assert f"Root SHA-256:   {pems['root']['fingerprint_sha256']} (ml-dsa-65" in out
    assert f"TLS root SHA-256: {pems['tls-root']['fingerprint_sha256']}" in out
    assert "Pin the TLS root (agent enrol --ca-fingerprint, certfleet login --ca-fingerprint)" in out
    assert cli("ca", "root", "--tls").stdout == pems["tls-root"]["certificate_pem"]
    assert cli("ca", "root").stdout == pems["root"]["certificate_pem"]


def test_ca_root_tls_over_a_classic_root_is_that_root(cli: Cli) -> None:
    cli("init")
    assert cli("ca", "root", "--tls").stdout == cli("ca", "root").stdout


def test_init_twice_refuses_and_changes_nothing(cli: Cli) -> None:
    assert cli("init", "--ca-name", "First").exit_code == 0
    cas = cli("ca", "list", "--format", "json").stdout
    files = _files(cli.data_dir / "keys")
    passphrase = (cli.data_dir / "ca-passphrase").read_bytes()
    audit = cli("audit", "list", "--format", "json").stdout

    again = cli("init", "--ca-name", "Second", "--key-type", "rsa-2048")

    assert again.exit_code == 2
    assert again.stderr == "error: this data directory already has a CA; refusing to create another\n"
    assert again.stdout == ""
    assert cli("ca", "list", "--format", "json").stdout == cas
    assert _files(cli.data_dir / "keys") == files
    assert len([name for name in files if name.endswith(".key.pem")]) == 2  # the two CA keys
    assert (cli.data_dir / "ca-passphrase").read_bytes() == passphrase
    assert cli("audit", "list", "--format", "json").stdout == audit


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--key-type", "rsa-1024"), "unknown key type 'rsa-1024'"),
        (("--key-type", "dsa"), "unknown key type 'dsa'"),
        (("--ca-name", ""), "CA name must be 1 to 50 characters"),
        (("--ca-name", "x" * 51), "CA name must be 1 to 50 characters"),
    ],
)
def test_bad_init_refuses_without_a_ca(cli: Cli, args: tuple[str, ...], reason: str) -> None:
    result = cli("init", *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and reason in result.stderr
    keys = cli.data_dir / "keys"
    assert not keys.exists() or list(keys.glob("*.key.pem")) == []  # no CA key
    # Still no CA: a later good init works.
    assert cli("init").exit_code == 0
