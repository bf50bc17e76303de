"""A mixed inventory for the cryptographic-inventory tests: issued RSA-2048 and P-256 (team
web), an imported RSA-1024 (team legacy), an imported Ed25519 and ML-DSA-65 (team pq), and a
SHA-1-signed leaf with its intermediate discovered on disk (team web)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.app import Platform
from certfleet.discovery import FileScanOptions
from certfleet.services.discovery import FileScanRequest, parse_trust_bundle
from certfleet.x509 import KeyType, fingerprint_sha256
from tests.discovery.pki import Pki, pem
from tests.lifecycle.fleet import issue


@dataclass
class MixedFleet:
    rsa_2048: str  # fingerprints
    p256: str
    rsa_1024: str
    ed25519: str
    ml_dsa_65: str
    sha1_leaf: str
    discovered: list[str]  # every certificate the file scan recorded (leaf and intermediate)
    sha1_path: str


def self_signed(key: CertificateIssuerPrivateKeyTypes, name: str, now: dt.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    digest = hashes.SHA256() if isinstance(key, rsa.RSAPrivateKey) else None
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(key, digest)
    )


def mixed_fleet(platform: Platform, workdir: Path) -> MixedFleet:
    now = platform.clock.now()
    rsa_2048 = issue(platform, "rsa.web.test", key_type=KeyType.RSA_2048, team="web").record
    p256 = issue(platform, "ec.web.test", team="web").record
    imports = {
        "rsa_1024": self_signed(rsa.generate_private_key(65537, 1024), "legacy.test", now),
        "ed25519": self_signed(ed25519.Ed25519PrivateKey.generate(), "ed.test", now),
        "ml_dsa_65": self_signed(mldsa.MLDSA65PrivateKey.generate(), "pq.test", now),
    }
    teams = {"rsa_1024": "legacy", "ed25519": "pq", "ml_dsa_65": "pq"}
    for label, cert in imports.items():
        outcome = platform.inventory.import_bytes(
            cert.public_bytes(serialization.Encoding.PEM), f"{label}.pem", actor="test", team=teams[label]
        )
        assert outcome.added == 1, outcome
    pki = Pki("Crypto Inventory", now=now.replace(microsecond=0))
    leaf = pki.sha1_leaf(["sha1.web.test"], workdir)
    scanned = workdir / "scanned"
    scanned.mkdir()
    (scanned / "sha1.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    request = FileScanRequest(
        (str(scanned),), FileScanOptions(), trust=parse_trust_bundle(pem(pki.root.cert), "t"), team="web"
    )
    platform.discovery.scan_files(request, actor="test")
    return MixedFleet(
        rsa_2048=rsa_2048.fingerprint_sha256,
        p256=p256.fingerprint_sha256,
        rsa_1024=fingerprint_sha256(imports["rsa_1024"]),
        ed25519=fingerprint_sha256(imports["ed25519"]),
        ml_dsa_65=fingerprint_sha256(imports["ml_dsa_65"]),
        sha1_leaf=fingerprint_sha256(leaf.cert),
        discovered=[fingerprint_sha256(leaf.cert), fingerprint_sha256(pki.intermediate.cert)],
        sha1_path=str(scanned / "sha1.pem"),
    )
