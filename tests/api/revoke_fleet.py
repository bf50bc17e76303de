"""The issue-12 revocation scenario, shared by the REST and dashboard tests: one team ("web")
with a CI certificate, a production certificate, one certificate that mixes both, and an
agent whose host name is itself under the CI pattern."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateRecord
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key
from tests.agent.csrs import csr_for
from tests.services.snapshot import table_counts

CI_PATTERN = "*.ci.example.test"
# Everything a revocation writes: a refused one must leave every count as it was.
REVOCATION_TABLES = (
    "revocations",
    "blocked_keys",
    "audit_log",
    "notification_events",
    "serials",
    "certificates",
)


@dataclass(frozen=True)
class Fleet:
    ci: CertificateRecord
    prod: CertificateRecord
    mixed: CertificateRecord
    agent_identity: CertificateRecord
    agent_identity_der: bytes
    other_agent_identity_der: bytes


def _issue(platform: Platform, *names: str) -> CertificateRecord:
    key = generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest("tls-server", key.public_key(), names, None, 30)
    return platform.issuance.issue(request, actor="test", team="web").record


def _enrol(platform: Platform, host: str) -> bytes:
    minted = platform.agents.create_join_token(host, team="web", ttl=dt.timedelta(hours=1), actor="test")
    key = generate_private_key(KeyType.EC_P256)
    enrolment = platform.agents.enroll(minted.token, csr_for(key).encode())
    return enrolment.issued.certificate.public_bytes(Encoding.DER)


def build_fleet(platform: Platform) -> Fleet:
    identity_der = _enrol(platform, "runner.ci.example.test")
    other_der = _enrol(platform, "builder.ci.example.test")
    agent_identity = platform.inventory.find(fingerprint_sha256(x509.load_der_x509_certificate(identity_der)))
    return Fleet(
        ci=_issue(platform, "build.ci.example.test"),
        prod=_issue(platform, "www.example.test"),
        mixed=_issue(platform, "deploy.ci.example.test", "api.example.test"),
        agent_identity=agent_identity,
        agent_identity_der=identity_der,
        other_agent_identity_der=other_der,
    )


def snapshot(platform: Platform) -> dict[str, int]:
    return table_counts(platform.database, REVOCATION_TABLES)
