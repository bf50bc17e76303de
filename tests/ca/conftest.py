"""A throwaway CA for every key type ``certfleet init --key-type`` offers, each built once per
test session (an RSA-4096 root and intermediate cost about a second), and pkilint runners."""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.ca import (
    Authority,
    CaCertificate,
    CaUrls,
    IssuanceRequest,
    IssuedCertificate,
    build_intermediate,
    build_root,
    ca_id_for,
)
from certfleet.x509 import KeyType, generate_private_key, to_pem
from tests.conftest import FakeClock

# A public-looking base URL and names: pkilint's CA/B Forum linter reports names under
# internal or reserved domains (www.example.test) as errors, which is right for the public
# web and beside the point here.
BASE_URL = "http://pki.example.com"
PROFILES = ("tls-server", "tls-client", "tls-server-client")
SERVER_PROFILES = ("tls-server", "tls-server-client")
BLOCKING = {"ERROR", "FATAL"}


@dataclass(frozen=True)
class CaKit:
    """A root, an issuing intermediate and an :class:`Authority` over it."""

    key_type: KeyType
    root: CaCertificate
    root_key: CertificateIssuerPrivateKeyTypes
    intermediate: CaCertificate
    authority: Authority
    clock: FakeClock

    def issue(
        self,
        profile: str,
        key: CertificateIssuerPrivateKeyTypes,
        names: tuple[str, ...] = ("www.example.com",),
        cn: str | None = "www.example.com",
        days: int | None = None,
        serial_number: int = 0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0,
    ) -> IssuedCertificate:
        request = IssuanceRequest(profile, key.public_key(), names, cn, days)
        return self.authority.sign(self.authority.validate(request), serial_number)

    def write_pems(self, directory: Path, issued: IssuedCertificate) -> tuple[Path, Path, Path]:
        root, chain, cert = directory / "root.pem", directory / "chain.pem", directory / "cert.pem"
        root.write_text(to_pem([self.root.certificate]))
        chain.write_text(to_pem(issued.chain))
        cert.write_text(to_pem([issued.certificate]))
        return root, chain, cert


@functools.cache
def ca_kit(key_type: KeyType) -> CaKit:
    # Real time, not a fixed date: openssl verify checks validity against the system clock.
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    urls = CaUrls(BASE_URL)
    root_key = generate_private_key(key_type)
    root_cert = build_root("Example", root_key, clock.now())
    root = CaCertificate(ca_id_for(root_cert), "Example Root CA", "root", None, root_cert, "test", "r", True)
    inter_key = generate_private_key(key_type)
    inter_cert = build_intermediate("Example", inter_key, root_cert, root_key, root.id, urls, clock.now())
    inter = CaCertificate(
        ca_id_for(inter_cert), "Example Issuing CA 1", "intermediate", root.id, inter_cert, "test", "i", True
    )
    authority = Authority(inter, inter_key, (inter_cert,), urls, clock)
    return CaKit(key_type, root, root_key, inter, authority, clock)


@functools.cache
def leaf_key(key_type: KeyType) -> CertificateIssuerPrivateKeyTypes:
    return generate_private_key(key_type)


def natural_leaf_key(ca_key_type: KeyType, profile: str) -> CertificateIssuerPrivateKeyTypes:
    """A leaf key of the CA's own family; ECDSA P-256 where the profile refuses Ed25519."""
    if ca_key_type is KeyType.ED25519 and profile in SERVER_PROFILES:
        return leaf_key(KeyType.EC_P256)
    if ca_key_type in (KeyType.RSA_3072, KeyType.RSA_4096):
        return leaf_key(KeyType.RSA_2048)  # the CA's size does not matter for the leaf
    return leaf_key(ca_key_type)


# The classic key types: these kits go through openssl verify, which Debian 12's OpenSSL 3.0
# cannot do for ML-DSA; tests/ca/test_pq_hierarchy.py covers ML-DSA with cryptography.
CLASSIC_KEY_TYPES = [k for k in KeyType if not k.post_quantum]


@pytest.fixture(scope="session", params=CLASSIC_KEY_TYPES, ids=[k.value for k in CLASSIC_KEY_TYPES])
def kit(request: pytest.FixtureRequest) -> CaKit:
    return ca_kit(request.param)


@dataclass(frozen=True)
class Finding:
    validator: str
    node_path: str
    severity: str
    code: str
    message: str | None


def pkilint(tool: str, path: Path, *args: str) -> list[Finding]:
    """Run a pkilint command-line linter and return every finding it reports.

    The exit code counts findings at or above ``-s`` (INFO by default), so it says nothing
    about errors; the JSON output carries each finding's severity.
    """
    executable = Path(sys.executable).parent / tool  # installed beside pytest by the test extra
    run = subprocess.run(
        [str(executable), "lint", *args, "-f", "JSON", str(path)], capture_output=True, text=True
    )
    assert run.stdout.strip(), f"{tool} printed nothing (exit {run.returncode}): {run.stderr}"
    report = json.loads(run.stdout)
    return [
        Finding(result["validator"], result["node_path"], f["severity"], f["code"], f["message"])
        for result in report["results"]
        for f in result["finding_descriptions"]
    ]


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in BLOCKING]
