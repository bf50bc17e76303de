"""The cryptographic inventory over a mixed fleet, on SQLite and PostgreSQL: every in-use
certificate classified (RSA, ECDSA, Ed25519 quantum-vulnerable; ML-DSA not), weak ones first,
with owners, locations and CA chain; a team's report holds its team only; and the CycloneDX
1.6 CBOM validates against the official schema and lists every discovered certificate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from certfleet.app import Platform
from certfleet.inventory.crypto import classify_key, classify_signature
from certfleet.services.agents import DeploymentReport, DeploymentStatus
from certfleet.services.crypto_cbom import cbom
from certfleet.services.crypto_report import migration_command
from certfleet.x509 import KeyType, generate_private_key, to_pem
from tests.agent.csrs import csr_for
from tests.conftest import FakeClock
from tests.services.crypto_fleet import MixedFleet, mixed_fleet
from tests.services.snapshot import rows


def _by_fingerprint(document: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["fingerprint_sha256"]: c for c in document["certificates"]}  # type: ignore[attr-defined,index]


def test_classification_names_quantum_vulnerability_and_weakness() -> None:
    assert classify_key("rsa", 2048).quantum_vulnerable is True
    assert classify_key("rsa", 1024).weakness == "RSA key of 1024 bits (under 2048)"
    assert classify_key("ec", 256).label == "ec-p256"
    assert classify_key("ed25519", 256).quantum_vulnerable is True
    assert classify_key("dsa", 2048).weakness is not None
    # ML-DSA as the PQ key types store it and as records made before them stored it.
    for stored in ("ml-dsa-65", "mldsa65publickey"):
        pq = classify_key(stored, 0)
        assert (pq.label, pq.quantum_vulnerable, pq.nist_quantum_level) == ("ml-dsa-65", False, 3)
    assert classify_signature("sha1WithRSAEncryption").weakness == "SHA-1 signature"
    assert classify_signature("md5WithRSAEncryption").weakness == "MD5 signature"
    assert classify_signature("ML-DSA-87").quantum_vulnerable is False
    assert classify_key("x9999", 1).quantum_vulnerable is None


def test_the_report_lists_every_certificate_weak_first(platform: Platform, tmp_path: Path) -> None:
    # Given a mixed inventory: issued, imported and discovered certificates
    fleet = mixed_fleet(platform, tmp_path)
    # When the whole inventory is reported
    document = platform.crypto.report().to_dict()
    found = _by_fingerprint(document)
    # Then every in-use certificate is there, discovered ones included, and the CAs
    expected = {fleet.rsa_2048, fleet.p256, fleet.rsa_1024, fleet.ed25519, fleet.ml_dsa_65, *fleet.discovered}
    assert expected <= set(found)
    assert document["summary"] == {
        "certificates": 7,
        "ca_certificates": 2,
        "agent_identities": 0,
        "trust_anchors": 0,
        "quantum_vulnerable": 6,
        "quantum_safe": 1,
        "weak": 2,
    }
    # Weak ones first: the RSA-1024 key and the SHA-1 signature, each saying why
    first_two = {c["fingerprint_sha256"]: c["weaknesses"] for c in document["certificates"][:2]}
    assert first_two == {
        fleet.rsa_1024: ["RSA key of 1024 bits (under 2048)"],
        fleet.sha1_leaf: ["SHA-1 signature"],
    }
    # Quantum vulnerability per algorithm: only ML-DSA is safe
    assert {fp: found[fp]["quantum_vulnerable"] for fp in expected - {fleet.ml_dsa_65}} == dict.fromkeys(
        expected - {fleet.ml_dsa_65}, True
    )
    assert found[fleet.ml_dsa_65]["quantum_vulnerable"] is False
    assert found[fleet.ml_dsa_65]["algorithm"] == "ml-dsa-65"
    assert found[fleet.rsa_2048]["algorithm"] == "rsa-2048"
    # Owners, locations and the CA chain
    assert found[fleet.sha1_leaf]["team"] == "web"
    assert found[fleet.sha1_leaf]["locations"] == [{"kind": "file", "location": fleet.sha1_path, "sni": ""}]
    assert found[fleet.rsa_2048]["chain"] == ["Test Issuing CA 1", "Test Root CA"]
    groups = {(g["algorithm"], g["signature_algorithm"]): g["count"] for g in document["groups"]}
    assert groups[("rsa-1024", "sha256WithRSAEncryption")] == 1
    assert document["groups"][0]["weak"] is True


def test_a_team_report_holds_that_team_only(platform: Platform, tmp_path: Path) -> None:
    fleet = mixed_fleet(platform, tmp_path)
    document = platform.crypto.report("pq").to_dict()
    assert set(_by_fingerprint(document)) == {fleet.ed25519, fleet.ml_dsa_65}
    assert document["summary"]["ca_certificates"] == 0
    assert document["team"] == "pq"


def test_revoked_and_expired_certificates_are_not_exposure(
    platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    fleet = mixed_fleet(platform, tmp_path)
    platform.revocation.revoke_serial(
        _by_fingerprint(platform.crypto.report("web").to_dict())[fleet.rsa_2048]["serial"],  # type: ignore[arg-type]
        "superseded",
        actor="test",
    )
    assert fleet.rsa_2048 not in _by_fingerprint(platform.crypto.report("web").to_dict())
    # Past the 30 days certfleet issued for, the P-256 certificate no longer counts
    clock.advance(dt.timedelta(days=31))
    assert fleet.p256 not in _by_fingerprint(platform.crypto.report().to_dict())


def test_exposure_counts_per_team_with_the_path_to_migrate(platform: Platform, tmp_path: Path) -> None:
    mixed_fleet(platform, tmp_path)
    lines = {
        (e.team, e.algorithm, e.weak): (e.count, e.quantum_vulnerable, e.migration)
        for e in platform.crypto.exposure()
    }
    assert lines[("web", "rsa-2048", False)] == (1, True, migration_command("rsa-2048", "web"))
    assert lines[("pq", "ml-dsa-65", False)] == (1, False, None)
    # Imported: no campaign can replace it, so no command is offered
    assert lines[("legacy", "rsa-1024", True)] == (1, True, None)
    # Team web: the issued RSA and P-256 are managed; the discovered leaf and intermediate not
    assert {(e.algorithm, e.weak, e.count, e.managed) for e in platform.crypto.exposure("web")} == {
        ("rsa-2048", False, 1, 1),
        ("ec-p256", False, 2, 1),
        ("ec-p256", True, 1, 0),
    }
    assert migration_command("rsa-2048", "web") == (
        "certfleet rotate --select 'key_type=rsa-2048,team=web' --to-profile internal-mtls-pq"
    )
    assert {e.team for e in platform.crypto.exposure("web")} == {"web"}


def _validated_cbom(platform: Platform, team: str | None = None) -> dict[str, object]:
    document = cbom(platform.crypto.report(team, with_der=True))
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is None, error
    return document


def test_the_cbom_validates_against_cyclonedx_1_6_and_lists_every_discovered_certificate(
    platform: Platform, tmp_path: Path
) -> None:
    fleet: MixedFleet = mixed_fleet(platform, tmp_path)
    document = _validated_cbom(platform)
    components = {c["bom-ref"]: c for c in document["components"]}  # type: ignore[attr-defined]
    certificates = {
        ref.removeprefix("crypto/certificate/"): c
        for ref, c in components.items()
        if c["cryptoProperties"]["assetType"] == "certificate"
    }
    # Every certificate the database holds as discovered is a component
    discovered = {
        fp
        for (fp,) in rows(
            platform.database, "SELECT fingerprint_sha256 FROM certificates WHERE source = 'discovered'"
        )
    }
    assert discovered == set(fleet.discovered)
    assert discovered <= set(certificates)
    assert {fleet.rsa_2048, fleet.p256, fleet.rsa_1024, fleet.ed25519, fleet.ml_dsa_65} <= set(certificates)
    # Certificate properties and references resolve to components
    sha1 = certificates[fleet.sha1_leaf]
    props = sha1["cryptoProperties"]["certificateProperties"]
    assert props["subjectName"] == "CN=sha1.web.test"
    assert props["signatureAlgorithmRef"] in components
    assert props["subjectPublicKeyRef"] in components
    assert sha1["evidence"]["occurrences"] == [{"location": fleet.sha1_path}]
    # ML-DSA-65: NIST category 3, its key related to its algorithm
    pq_key = components[
        certificates[fleet.ml_dsa_65]["cryptoProperties"]["certificateProperties"]["subjectPublicKeyRef"]
    ]
    algorithm = components[pq_key["cryptoProperties"]["relatedCryptoMaterialProperties"]["algorithmRef"]]
    assert algorithm["cryptoProperties"]["algorithmProperties"]["parameterSetIdentifier"] == "65"
    assert algorithm["cryptoProperties"]["algorithmProperties"]["nistQuantumSecurityLevel"] == 3
    rsa = components["crypto/algorithm/rsa-2048"]["cryptoProperties"]["algorithmProperties"]
    assert rsa["nistQuantumSecurityLevel"] == 0
    # Dependencies: certificate -> key and signature algorithm (and issuing CA); key -> algorithm
    depends = {d["ref"]: set(d["dependsOn"]) for d in document["dependencies"]}  # type: ignore[attr-defined]
    issued = depends[f"crypto/certificate/{fleet.rsa_2048}"]
    assert props["subjectPublicKeyRef"] in depends and any(r.startswith("crypto/key/") for r in issued)
    assert "crypto/signature/ecdsa-with-SHA256" in issued
    assert any(r.startswith("crypto/certificate/") for r in issued)  # the issuing CA's certificate
    every_ref = {r for on in depends.values() for r in on} | set(depends)
    assert every_ref <= set(components)


def test_a_team_cbom_validates_and_names_the_team(platform: Platform, tmp_path: Path) -> None:
    mixed_fleet(platform, tmp_path)
    document = _validated_cbom(platform, "legacy")
    kinds = sorted(c["cryptoProperties"]["assetType"] for c in document["components"])  # type: ignore[attr-defined]
    assert kinds == ["algorithm", "algorithm", "certificate", "related-crypto-material"]


def test_an_agent_deployment_is_a_location(platform: Platform) -> None:
    # Given an agent of team web that deployed an RSA-2048 certificate to nginx
    minted = platform.agents.create_join_token(
        "web1.example.test", team="web", ttl=dt.timedelta(hours=1), actor="test", allow_names=["*.web.test"]
    )
    enrolment = platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    key = generate_private_key(KeyType.RSA_2048)
    issued = platform.agents.issue(
        enrolment.agent, "www", csr_for(key, ["www.web.test"]).encode(), profile="tls-server"
    )
    files = {"key": "/etc/nginx/tls/www.key", "fullchain": "/etc/nginx/tls/www.crt"}
    report = DeploymentReport(
        "www", DeploymentStatus.DEPLOYED, to_pem([issued.issued.certificate]).encode(), files
    )
    platform.agents.report(enrolment.agent, report)
    # Then the report places it on the agent's host, at each file it wrote
    [entry] = [
        c for c in platform.crypto.report("web").to_dict()["certificates"] if c["algorithm"] == "rsa-2048"
    ]
    assert entry["team"] == "web"
    assert {(p["kind"], p["location"]) for p in entry["locations"]} >= {
        ("agent", "web1.example.test:/etc/nginx/tls/www.crt"),
        ("agent", "web1.example.test:/etc/nginx/tls/www.key"),
    }
