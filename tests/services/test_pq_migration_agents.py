"""A migration of agent-held certificates to the post-quantum hierarchy, server side (issue
17), on SQLite and PostgreSQL: the campaign waits for the agent (ARI), counts only a
replacement under the target profile and key type (an agent renewing RSA as before is no
migration), and when the agent reports that its endpoint could not put the ML-DSA
certificate in place, keeps that as the item's outcome without aborting the campaign. The
agent is told the profile and key type in its instructions; renewing with them is the
agent's part, not built yet."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.x509.oid import NameOID

from certfleet.app import Platform
from certfleet.lifecycle.campaigns import CampaignRequest, ItemAction, ItemState
from certfleet.lifecycle.selection import Selection
from certfleet.services.agents import DeploymentReport, DeploymentStatus
from certfleet.x509 import KeyType, generate_private_key, to_pem
from tests.agent.csrs import csr_for

FILES = {"key": "/etc/nginx/tls/www.key", "fullchain": "/etc/nginx/tls/www.crt"}


def _ml_dsa_csr(key: mldsa.MLDSA65PrivateKey, name: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, None)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_an_agent_certificate_moves_to_ml_dsa_and_a_failed_deployment_is_its_outcome(
    platform: Platform,
) -> None:
    # Given an agent of team web serving an RSA-2048 certificate, and the PQ hierarchy
    minted = platform.agents.create_join_token(
        "web1.example.test", team="web", ttl=dt.timedelta(hours=1), actor="test", allow_names=["*.web.test"]
    )
    agent = platform.agents.enroll(
        minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode()
    ).agent
    rsa = generate_private_key(KeyType.RSA_2048)
    old = platform.agents.issue(agent, "www", csr_for(rsa, ["www.web.test"]).encode(), profile="tls-server")
    pem = to_pem([old.issued.certificate]).encode()
    platform.agents.report(
        agent, DeploymentReport("www", DeploymentStatus.DEPLOYED, pem, FILES, "127.0.0.1:443")
    )
    _, pq_issuer = platform.authorities.create_hierarchy("PQ", KeyType.ML_DSA_65, actor="test")
    # When a campaign moves team web's RSA-2048 certificates to internal-mtls-pq
    request = CampaignRequest(Selection.parse("key_type=rsa-2048,team=web"), to_profile="internal-mtls-pq")
    campaign = platform.rotation.create(request, actor="test")
    [item] = platform.rotation.items(campaign.id, after_id=0, limit=10)
    assert (item.action, item.state, item.holder) == (ItemAction.ARI, ItemState.AWAITING_CLIENT, agent.name)
    # and the agent is told to renew under internal-mtls-pq with a new ML-DSA-65 key
    [told] = platform.agents.instructions(agent)
    assert (told.name, told.serial, told.profile, told.key_type) == (
        "www",
        old.record.serial,
        "internal-mtls-pq",
        "ml-dsa-65",
    )
    assert told.renew_from <= platform.clock.now()  # its ARI window moved to now
    # Then an RSA renewal under the old profile does not count as the migration
    stray = platform.agents.issue(
        agent,
        "www",
        csr_for(generate_private_key(KeyType.RSA_2048), ["www.web.test"]).encode(),
        profile="tls-server",
    )
    report = platform.rotation.run(campaign.id)
    assert report.counts.of(ItemState.AWAITING_CLIENT) == 1
    # But an ML-DSA-65 certificate under internal-mtls-pq, from the PQ issuing CA, does
    key = mldsa.MLDSA65PrivateKey.generate()
    new = platform.agents.issue(
        agent, "www", _ml_dsa_csr(key, "www.web.test").encode(), profile="internal-mtls-pq"
    )
    assert new.record.issuer_ca_id == pq_issuer.id
    assert platform.rotation.run(campaign.id).counts.of(ItemState.REISSUED) == 1
    # When nginx (OpenSSL 3.0) cannot load the ML-DSA key, the agent rolls back and says so
    detail = "reload failed: SSL_CTX_use_PrivateKey: unsupported algorithm; rolled back"
    failed = DeploymentReport(
        "www", DeploymentStatus.ROLLED_BACK, to_pem([new.issued.certificate]).encode(), FILES, detail=detail
    )
    platform.agents.report(agent, failed)
    report = platform.rotation.run(campaign.id)
    # Then the item's outcome names the endpoint's limit; the campaign is not aborted
    [item] = platform.rotation.items(campaign.id, after_id=0, limit=10)
    assert item.state is ItemState.REISSUED and item.deployed_at is None
    assert item.last_error == (
        f"issued; rolled_back on {agent.name} (www): endpoint cannot present ml-dsa-65: {detail}"
    )
    assert report.campaign.status.value in ("waiting", "completed")
    # And in the crypto report the migrated certificate is superseded, the ML-DSA one safe
    # (the stray RSA renewal stays listed: it is valid until revoked or expired)
    web = {c["fingerprint_sha256"]: c for c in platform.crypto.report("web").to_dict()["certificates"]}
    assert old.record.fingerprint_sha256 not in web
    assert web[new.record.fingerprint_sha256]["quantum_vulnerable"] is False
    assert web[stray.record.fingerprint_sha256]["quantum_vulnerable"] is True
