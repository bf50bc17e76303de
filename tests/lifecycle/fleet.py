"""Helpers shared by the lifecycle tests: issue certificates, read jobs and lineage."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateRecord
from certfleet.services.issuance import IssuanceResult
from certfleet.x509 import KeyType, generate_private_key
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
