"""A server-side migration to the post-quantum hierarchy (issue 17), on SQLite and PostgreSQL:
team web's RSA-2048 certificates are reissued with new ML-DSA-65 keys (certfleet generates
them: ``--generate-keys``) under ``internal-mtls-pq``, from the ML-DSA-65 hierarchy beside the
classic one, and the crypto report shows that team's quantum-vulnerable count fall to zero
while another team's stays."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from certfleet.app import Platform
from certfleet.lifecycle.campaigns import CampaignRequest, CampaignStatus, ItemState
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyType
from tests.lifecycle.fleet import issue


def test_rsa_2048_moves_to_ml_dsa_65_and_the_team_exposure_falls_to_zero(
    platform: Platform, tmp_path: Path
) -> None:
    # Given team web's RSA-2048 certificates, another team's, and a parallel ML-DSA-65 hierarchy
    web = [
        issue(platform, f"svc{i}.web.test", key_type=KeyType.RSA_2048, team="web").record for i in range(2)
    ]
    issue(platform, "svc.db.test", key_type=KeyType.RSA_2048, team="db")
    _, pq_issuer = platform.authorities.create_hierarchy("PQ", KeyType.ML_DSA_65, actor="test")
    assert platform.crypto.report("web").summary()["quantum_vulnerable"] == 2
    # When the campaign moves them to internal-mtls-pq with keys certfleet generates
    request = CampaignRequest(
        Selection.parse("key_type=rsa-2048,team=web"),
        to_profile="internal-mtls-pq",
        generate_dir=tmp_path / "keys",
        revoke_old_after=None,
    )
    campaign = platform.rotation.create(request, actor="test")
    assert campaign.to_key_type == "ml-dsa-65"  # the profile's key type
    report = platform.rotation.run(campaign.id)
    assert report.counts.of(ItemState.REISSUED) == 2
    assert report.campaign.status in (CampaignStatus.WAITING, CampaignStatus.COMPLETED)
    # Then every successor is ML-DSA-65, signed by the PQ issuing CA
    after = platform.crypto.report("web").to_dict()
    assert after["summary"]["quantum_vulnerable"] == 0
    assert after["summary"]["quantum_safe"] == 2
    for entry in after["certificates"]:
        assert entry["algorithm"] == "ml-dsa-65" and entry["signature_algorithm"] == "ML-DSA-65"
        assert entry["issuer_ca_id"] == pq_issuer.id and entry["profile"] == "internal-mtls-pq"
        assert entry["chain"] == [pq_issuer.name, "PQ Root CA"]
    # The new keys were made here, written 0600 beside certificates that chain to the PQ root
    pq_root = next(ca for ca in platform.authorities.hierarchy() if ca.id == pq_issuer.parent_id)
    for old in web:
        directory = tmp_path / "keys" / old.serial
        assert (directory / "key.pem").stat().st_mode & 0o777 == 0o600
        leaf = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        leaf.verify_directly_issued_by(pq_issuer.certificate)
        pq_issuer.certificate.verify_directly_issued_by(pq_root.certificate)
    # And the other team's exposure is unchanged
    assert platform.crypto.report("db").summary()["quantum_vulnerable"] == 1
