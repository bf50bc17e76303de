"""An agent's own mTLS identity (EC P-256) in the cryptographic inventory, on SQLite and
PostgreSQL: certfleet's plumbing like its CAs (the agent-server channel runs on Python's ssl,
OpenSSL 3.0, which cannot do ML-DSA), so it is listed in the unscoped report and the CBOM
with its owner and that reason, and never counted in the agent's team's exposure: once a
campaign moved the team's certificates to ML-DSA, the team's exposure is zero (issue 17).
Likewise the public roots an agent reports from its host's trust stores."""

from __future__ import annotations

import base64
import datetime as dt
import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from certfleet.app import Platform
from certfleet.discovery import fingerprint
from certfleet.services.crypto_cbom import cbom
from certfleet.services.discovery import agent_readings
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key
from tests.agent.csrs import csr_for
from tests.discovery.pki import Pki


def _ml_dsa_csr(name: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(mldsa.MLDSA65PrivateKey.generate(), None)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_an_agent_identity_is_certfleets_not_its_teams_exposure(platform: Platform) -> None:
    # Given an agent of team web (its identity EC P-256) holding an ML-DSA-65 certificate
    minted = platform.agents.create_join_token(
        "web1.example.test", team="web", ttl=dt.timedelta(hours=1), actor="test", allow_names=["*.web.test"]
    )
    enrolment = platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    identity = fingerprint_sha256(enrolment.issued.certificate)
    platform.authorities.create_hierarchy("PQ", KeyType.ML_DSA_65, actor="test")
    pq = platform.agents.issue(
        enrolment.agent, "svc", _ml_dsa_csr("svc.web.test").encode(), profile="internal-mtls-pq"
    )
    # When team web's report and exposure are read
    team = platform.crypto.report("web").to_dict()
    # Then only the ML-DSA certificate is there: nothing quantum-vulnerable
    assert [c["fingerprint_sha256"] for c in team["certificates"]] == [pq.record.fingerprint_sha256]
    assert team["summary"]["quantum_vulnerable"] == 0 and team["summary"]["quantum_safe"] == 1
    assert [(e.team, e.algorithm, e.count) for e in platform.crypto.exposure("web")] == [
        ("web", "ml-dsa-65", 1)
    ]
    assert all(e.algorithm != "ec-p256" for e in platform.crypto.exposure())
    # And the unscoped report lists the identity as certfleet's, saying why
    everything = platform.crypto.report().to_dict()
    [entry] = [c for c in everything["certificates"] if c["fingerprint_sha256"] == identity]
    assert (entry["owner"], entry["team"], entry["source"], entry["quantum_vulnerable"]) == (
        "certfleet (agent identity)",
        None,
        "agent-identity",
        True,
    )
    assert "cannot do ML-DSA" in entry["note"]
    assert everything["summary"]["agent_identities"] == 1
    # And so does the CBOM, which validates against CycloneDX 1.6
    document = cbom(platform.crypto.report(with_der=True))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
    [component] = [c for c in document["components"] if c["bom-ref"] == f"crypto/certificate/{identity}"]
    properties = {p["name"]: p["value"] for p in component["properties"]}
    assert properties["certfleet:owner"] == "certfleet (agent identity)"
    assert "certfleet:team" not in properties


def test_roots_of_the_hosts_trust_stores_are_listed_apart_not_a_teams_exposure(platform: Platform) -> None:
    # Given an agent of team web that reported its host's trust store (one public root)
    pki = Pki("Public")
    der = base64.b64encode(pki.root.cert.public_bytes(Encoding.DER)).decode()
    store = {
        "kind": "system",
        "path": "/etc/ssl/certs/ca-certificates.crt",
        "roots": [fingerprint(pki.root.cert)],
    }
    readings = agent_readings({fingerprint(pki.root.cert): der}, [store])
    platform.discovery.record_trust_stores("web1.example.test", readings, team="web", actor="agent:web1")
    # Then team web's report and exposure do not hold it
    assert platform.crypto.report("web").to_dict()["certificates"] == []
    assert platform.crypto.exposure("web") == []
    # And the unscoped report and CBOM list it without a team, saying why
    [entry] = [c for c in platform.crypto.report().to_dict()["certificates"] if c["source"] == "trust-anchor"]
    assert (entry["team"], entry["owner"], entry["quantum_vulnerable"]) == (
        None,
        "its CA (in hosts' trust stores)",
        True,
    )
    assert "no campaign replaces it" in entry["note"]
    document = cbom(platform.crypto.report(with_der=True))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
