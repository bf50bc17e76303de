"""Every refusal of `certfleet issue`: exit code 2, one line on stderr naming the reason, no
traceback, and nothing recorded: the inventory and the serials are unchanged (an audit entry
'certificate.refused' is the only trace allowed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.store import Database
from tests.conftest import Cli
from tests.services.snapshot import audit_actions, table_counts
from tests.x509.factories import (
    OVERSIZED_RSA_BITS,
    build_csr,
    der,
    dsa_csr,
    explicit_ec_csr,
    oversized_rsa_csr,
    pem,
    rsa_key,
    secp256k1_csr,
    with_flipped_signature,
)

INVENTORY = ("certificates", "certificate_names", "serials")


def _csr_file(data: bytes) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        path = tmp / "request.csr"
        path.write_bytes(data)
        return ["--csr", str(path)]

    return args


def _sans(*names: str) -> Callable[[Path], list[str]]:
    return lambda _tmp: [arg for name in names for arg in ("--san", name)]


def _args(*extra: str) -> Callable[[Path], list[str]]:
    return lambda _tmp: list(extra)


def _ec_csr(*names: str) -> bytes:
    return pem(build_csr(ec.generate_private_key(ec.SECP256R1()), names))


REFUSALS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # CSRs
    "csr-bad-signature-der": (
        _csr_file(with_flipped_signature(build_csr(rsa_key(2048), ("www.example.com",)))),
        "CSR signature does not verify",
    ),
    "csr-bad-signature-ec": (
        _csr_file(
            with_flipped_signature(build_csr(ec.generate_private_key(ec.SECP256R1()), ("a.example.com",)))
        ),
        "CSR signature does not verify",
    ),
    "csr-rsa-1024": (
        _csr_file(pem(build_csr(rsa_key(1024), ("www.example.com",)))),
        "1024 bits is too small",
    ),
    "csr-rsa-over-8192": (_csr_file(oversized_rsa_csr()), f"{OVERSIZED_RSA_BITS} bits is too large"),
    "csr-dsa": (_csr_file(dsa_csr()), "DSA keys are not supported"),
    "csr-secp256k1": (_csr_file(secp256k1_csr()), "EC curve secp256k1 is not allowed"),
    "csr-explicit-ec-parameters": (_csr_file(explicit_ec_csr()), "explicit"),
    "csr-malformed-pem": (
        _csr_file(b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n"),
        "malformed CSR",
    ),
    "csr-malformed-der": (_csr_file(b"\x30\x82\x02\x00\x02\x01\x00garbage"), "malformed CSR"),
    "csr-truncated-der": (
        _csr_file(der(build_csr(ec.generate_private_key(ec.SECP256R1()), ("a.example.com",)))[:-7]),
        "malformed CSR",
    ),
    "csr-not-a-file": (_args("--csr", "/nonexistent/request.csr"), "cannot read CSR"),
    "csr-bad-name": (_csr_file(_ec_csr("bad_name.example.com")), "illegal characters"),
    "csr-101-sans": (
        _csr_file(_ec_csr(*(f"h{i}.example.com" for i in range(101)))),
        "101 subject alternative names",
    ),
    # Names given on the command line
    "empty-label": (_sans("www..example.com"), "empty label"),
    "leading-dot": (_sans(".example.com"), "empty label"),
    "illegal-character": (_sans("www_1.example.com"), "illegal characters"),
    "illegal-space": (_sans("www example.com"), "illegal characters"),
    "leading-hyphen": (_sans("-www.example.com"), "illegal characters"),
    "non-ascii": (_sans("bücher.example.com"), "non-ASCII"),
    "non-leftmost-wildcard": (_sans("www.*.example.com"), "not the leftmost"),
    "double-wildcard": (_sans("*.*.example.com"), "more than one wildcard"),
    "double-star-wildcard": (_sans("**.example.com"), "more than one wildcard"),
    "partial-wildcard": (_sans("w*.example.com"), "partial wildcard"),
    "bare-wildcard": (_sans("*.com"), "at least two labels"),
    "name-over-253-bytes": (
        _sans("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63),
        "longer than 253",
    ),
    "label-over-63": (_sans("a" * 64 + ".example.com"), "longer than 63"),
    "bad-ipv4": (_sans("010.0.0.1"), "neither a valid IPv4"),
    "bad-ipv6": (_sans("2001:db8::zz"), "not a valid IPv6"),
    "ipv6-zone": (_sans("fe80::1%eth0"), "zone index"),
    "101-sans": (_sans(*(f"h{i}.example.com" for i in range(101))), "101 subject alternative names"),
    "cn-not-in-sans": (
        _args("--cn", "other.example.com", "--san", "www.example.com"),
        "not one of the subject",
    ),
    "no-names": (_args(), "requires at least one DNS name"),
    # Profile and validity
    "unknown-profile": (
        _args("--profile", "code-signing", "--san", "a.example.com"),
        "unknown profile 'code-signing'",
    ),
    "days-beyond-maximum": (_args("--days", "399", "--san", "a.example.com"), "maximum of 398 days"),
    "days-zero": (_args("--days", "0", "--san", "a.example.com"), "at least 1 day"),
    "unknown-key-type": (
        _args("--key-type", "rsa-1024", "--san", "a.example.com"),
        "unknown key type 'rsa-1024'",
    ),
    "ed25519-server": (
        _args("--key-type", "ed25519", "--san", "a.example.com"),
        "Ed25519 keys are not allowed",
    ),
}


def test_name_over_253_bytes_really_is() -> None:
    assert len(REFUSALS["name-over-253-bytes"][0](Path())[1]) == 255


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal(ca_cli: Cli, tmp_path: Path, case: str) -> None:
    """Each case shares the module's data directory: a refusal must change nothing, which is
    exactly what every case checks."""
    initialized = ca_cli
    make_args, reason = REFUSALS[case]
    args = make_args(tmp_path)
    database = Database(initialized.db_url)
    try:
        before = table_counts(database, INVENTORY)
        audit_before = audit_actions(database)
        out = tmp_path / "out"

        result = initialized("issue", *args, "--out", str(out))

        assert result.exit_code == 2, result
        assert result.stdout == ""
        assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: ")
        assert reason in result.stderr
        assert "Traceback" not in result.stderr
        assert table_counts(database, INVENTORY) == before
        new_audit = audit_actions(database)[len(audit_before) :]
        assert set(new_audit) <= {"certificate.refused"}
        assert not out.exists()
    finally:
        database.dispose()


def test_refusal_before_init_names_the_fix(cli: Cli, tmp_path: Path) -> None:
    result = cli("issue", "--san", "www.example.com", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "certfleet init" in result.stderr
    assert not (tmp_path / "out").exists()
