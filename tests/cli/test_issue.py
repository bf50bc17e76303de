"""`certfleet issue`: the files it writes, with a generated key or a CSR."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import Cli
from tests.x509.factories import build_csr, der, pem, rsa_key


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _openssl_verify(cli: Cli, out: Path, tmp_path: Path) -> None:
    root = tmp_path / "root.pem"
    root.write_text(cli("ca", "root").stdout)
    run = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(root),
            "-untrusted",
            str(out / "chain.pem"),
            str(out / "cert.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == f"{out / 'cert.pem'}: OK"


@pytest.mark.parametrize(
    ("key_type", "profile", "algorithm"),
    [
        ("ec-p256", "tls-server", ec.EllipticCurvePublicKey),
        ("ec-p384", "tls-server-client", ec.EllipticCurvePublicKey),
        ("rsa-2048", "tls-server", rsa.RSAPublicKey),
        ("ed25519", "tls-client", ed25519.Ed25519PublicKey),
    ],
)
def test_issue_with_a_generated_key_writes_four_files(
    ca_cli: Cli, tmp_path: Path, key_type: str, profile: str, algorithm: type
) -> None:
    out = tmp_path / "out"
    result = ca_cli(
        "issue",
        "--profile",
        profile,
        "--key-type",
        key_type,
        "--cn",
        "www.example.com",
        "--san",
        "www.example.com",
        "--san",
        "192.0.2.1",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("Issued serial ")
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"]
    (cert,) = _certs(out / "cert.pem")
    chain = _certs(out / "chain.pem")
    assert _certs(out / "fullchain.pem") == [cert, *chain]
    assert len(chain) == 1 and chain[0].subject == cert.issuer  # the intermediate, no root
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    assert key.public_key() == cert.public_key()
    assert isinstance(cert.public_key(), algorithm)
    assert f"serial {cert.serial_number:x} " in result.stdout
    _openssl_verify(ca_cli, out, tmp_path)


@pytest.mark.parametrize("encode", [pem, der], ids=["pem", "der"])
def test_issue_from_a_csr_certifies_its_key_and_names(ca_cli: Cli, tmp_path: Path, encode: object) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr_path = tmp_path / "request.csr"
    csr_path.write_bytes(encode(build_csr(key, ("api.example.com", "2001:db8::7"), cn="api.example.com")))  # type: ignore[operator]
    out = tmp_path / "out"
    result = ca_cli("issue", "--csr", str(csr_path), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "chain.pem", "fullchain.pem"]  # no key.pem
    (cert,) = _certs(out / "cert.pem")
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["2001:db8::7"]
    _openssl_verify(ca_cli, out, tmp_path)


def test_san_options_override_the_csrs_names(ca_cli: Cli, tmp_path: Path) -> None:
    csr_path = tmp_path / "request.csr"
    csr_path.write_bytes(pem(build_csr(rsa_key(2048), ("asked.example.com",), cn="asked.example.com")))
    out = tmp_path / "out"
    assert (
        ca_cli("issue", "--csr", str(csr_path), "--san", "granted.example.com", "--out", str(out)).exit_code
        == 0
    )
    (cert,) = _certs(out / "cert.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["granted.example.com"]


def test_days_and_team_are_recorded(ca_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    team = f"team-{tmp_path.name}"  # the module's data directory is shared
    result = ca_cli("issue", "--san", "www.example.com", "--days", "10", "--team", team, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    (cert,) = _certs(out / "cert.pem")
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=10)
    listed = json.loads(ca_cli("inventory", "list", "--team", team, "--format", "json").stdout)
    assert [(r["serial"], r["team"], r["profile"]) for r in listed] == [
        (format(cert.serial_number, "x"), team, "tls-server")
    ]
    assert json.loads(ca_cli("inventory", "list", "--team", team + "-other", "--format", "json").stdout) == []


def test_out_must_be_a_directory(ca_cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = ca_cli("inventory", "list", "--format", "json").stdout
    result = ca_cli("issue", "--san", "www.example.com", "--out", str(blocker))
    assert result.exit_code == 2
    assert "is not a directory" in result.stderr
    assert ca_cli("inventory", "list", "--format", "json").stdout == before
