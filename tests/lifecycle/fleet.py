"""Helpers shared by the lifecycle tests: issue certificates (and enrol them over SCEP and EST),
read jobs and lineage."""

from __future__ import annotations

import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.access.scep import TransactionStatus
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateRecord
from certfleet.services.issuance import IssuanceResult
from certfleet.x509 import KeyType, generate_private_key
from tests.protocols.scep.client import csr, rsa_key, self_signed
from tests.services.snapshot import rows


def issue(
    platform: Platform,
    *names: str,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    key_type: KeyType = KeyType.EC_P256,
    days: int = 30,
    team: str | None = None,
    tags: tuple[str, ...] = (),
    profile: str = "tls-server",
) -> IssuanceResult:
    private_key = key or generate_private_key(key_type)
    request = IssuanceRequest(profile, private_key.public_key(), names, names[0], days)
    return platform.issuance.issue(request, actor="test", team=team, tags=tags, private_key=private_key)


def successors(platform: Platform, record: CertificateRecord) -> list[int]:
    """Every certificate recorded as replacing ``record`` (the constraint allows one)."""
    return [
        r[0]
        for r in rows(
            platform.database,
            "SELECT certificate_id FROM certificate_lineage WHERE supersedes_id = :i",
            i=record.id,
        )
    ]


def job_row(platform: Platform, record: CertificateRecord) -> dict[str, Any]:
    found = rows(
        platform.database,
        "SELECT state, failures, attempts, last_error, successor_id FROM renewal_jobs "
        "WHERE certificate_id = :i",
        i=record.id,
    )
    assert found, f"no job for {record.serial}"
    state, failures, attempts, last_error, successor_id = found[0]
    return {
        "state": state,
        "failures": failures,
        "attempts": attempts,
        "last_error": last_error,
        "successor_id": successor_id,
    }


def certificates_named(platform: Platform, name: str) -> list[CertificateRecord]:
    ids = [
        r[0]
        for r in rows(
            platform.database,
            "SELECT certificate_id FROM certificate_names WHERE name = :n ORDER BY certificate_id",
            n=name,
        )
    ]
    with platform.store.unit_of_work(read_only=True) as uow:
        found = [uow.lifecycle.lineage.certificate(i) for i in ids]
    return [r for r in found if r is not None]


def scep_enrol(
    platform: Platform,
    name: str,
    *,
    team: str = "devices",
    signer: x509.Certificate | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A PKCSReq with a fresh key and a challenge of ``team``, or (``signer``) a RenewalReq
    signed by the certificate it renews, through the SCEP service."""
    key = key or rsa_key()
    if signer is None:
        password = platform.scep.create_challenge(team, actor="test").password
        request = csr(key, name, challenge=password, sans=(name,))
        transaction = platform.scep.enrol(request, secrets.token_hex(8), self_signed(key), renewal=False)
    else:
        new_key = rsa_key()
        request = csr(new_key, name, sans=(name,))
        transaction = platform.scep.enrol(request, secrets.token_hex(8), signer, renewal=True)
        key = new_key
    assert transaction.status is TransactionStatus.ISSUED and transaction.chain_pem
    return x509.load_pem_x509_certificates(transaction.chain_pem.encode())[0], key


def est_enrol(
    platform: Platform, name: str, *, team: str = "lab", key: rsa.RSAPrivateKey | None = None
) -> x509.Certificate:
    """A ``simpleenroll`` with a credential of ``team``, through the EST service."""
    credential = platform.est.create_credential(team, actor="test").record
    request = csr(key or rsa_key(), name, sans=(name,))
    return platform.est.enrol(request, credential, None).issued.certificate
