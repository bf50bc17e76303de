"""The listener root (issue 17): over an ML-DSA default root, the HTTPS listener's chain starts
from a classic EC P-256 root of its own, since OpenSSL 3.0 refuses to load a chain holding an
ML-DSA signature (CA_MD_TOO_WEAK); a classic default hierarchy gets no such root."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certfleet.agent.trust import verify_bundle
from certfleet.api.agents import ca_pem
from certfleet.app import Platform
from certfleet.ca import (
    AGENT_IDENTITY_ROLE,
    LISTENER_ROOT_ROLE,
    SERVER_IDENTITY_ROLE,
    IssuanceRequest,
    build_server_identity_ca,
    is_server_identity_ca,
)
from certfleet.errors import InvalidInput
from certfleet.services.server_identity import ServerIdentity, ensure_server_identity
from certfleet.x509 import KeyType, fingerprint_sha256
from tests.conftest import FakeClock

PASSWORD = b"test-passphrase"


@pytest.fixture
def pq_platform(bare_platform: Platform) -> Platform:
    """An ML-DSA-65 default hierarchy as ``AuthorityService.initialize`` makes it (the state of
    a directory from before the listener root existed: no such root yet)."""
    bare_platform.authorities.initialize("PQ", KeyType.ML_DSA_65, actor="test")
    return bare_platform


def _ensure(platform: Platform, tmp_path: Path, clock: FakeClock) -> ServerIdentity:
    return ensure_server_identity(platform.issuance, tmp_path / "tls", (), PASSWORD, clock)


def _listener_roots(platform: Platform) -> list[x509.Certificate]:
    return [ca.certificate for ca in platform.authorities.hierarchy() if ca.role == LISTENER_ROOT_ROLE]


def test_a_classic_default_root_is_its_own_tls_root_and_gets_no_new_row(
    platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    before = {ca.id for ca in platform.authorities.hierarchy()}

    tls_root = platform.authorities.ensure_tls_root(actor="test")

    assert tls_root.id == platform.authorities.root().id
    assert {ca.id for ca in platform.authorities.hierarchy()} == before
    _ensure(platform, tmp_path, clock)
    assert not _listener_roots(platform)


def test_an_ml_dsa_default_root_serves_through_a_classic_listener_root(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    identity = _ensure(pq_platform, tmp_path, clock)

    # What failed at 'serve' start before: OpenSSL loading the listener's chain.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.certificate_file, identity.key_file, PASSWORD)
    (listener_root,) = _listener_roots(pq_platform)
    assert isinstance(listener_root.public_key(), ec.EllipticCurvePublicKey)
    assert listener_root.subject == listener_root.issuer
    assert "TLS Root CA" in listener_root.subject.rfc4514_string()
    server_ca = x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())[1]
    assert is_server_identity_ca(server_ca, listener_root)


def test_the_listener_root_is_never_the_default_nor_a_profiles_root(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    _ensure(pq_platform, tmp_path, clock)
    tls_root = pq_platform.authorities.ensure_tls_root(actor="test")

    root = pq_platform.authorities.root()
    assert root.id != tls_root.id
    assert isinstance(root.certificate.public_key(), mldsa.MLDSA65PublicKey)
    for profile in ("tls-server", "internal-mtls-pq"):
        issuer = pq_platform.authorities.authority_for(profile).issuer
        assert issuer.parent_id == root.id


def test_a_second_start_reuses_the_listener_root_and_certificate(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    first = _ensure(pq_platform, tmp_path, clock)

    again = _ensure(pq_platform, tmp_path, clock)

    assert first.reissued and not again.reissued
    assert len(_listener_roots(pq_platform)) == 1
    assert sum(1 for ca in pq_platform.authorities.hierarchy() if ca.role == SERVER_IDENTITY_ROLE) == 1


def test_ca_rotate_on_an_ml_dsa_default_root_rotates_that_hierarchy_and_leaves_the_listener(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    _ensure(pq_platform, tmp_path, clock)
    root = pq_platform.authorities.root()

    inter, retired = pq_platform.authorities.add_intermediate(None, actor="test")

    assert inter.parent_id == root.id and retired
    assert isinstance(inter.certificate.public_key(), mldsa.MLDSA65PublicKey)
    assert not _ensure(pq_platform, tmp_path, clock).reissued


def _agent_identity(platform: Platform) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    request = IssuanceRequest("tls-client", key.public_key(), ("h1",), "h1", 30)
    result = platform.issuance.issue_agent_identity(
        request, actor="test", team="web", tags=("certfleet-agent-identity",)
    )
    return result.issued.certificate


def test_agent_identities_under_an_ml_dsa_root_come_from_a_client_auth_ca_under_the_listener_root(
    pq_platform: Platform,
) -> None:
    identity = _agent_identity(pq_platform)

    (listener_root,) = _listener_roots(pq_platform)
    by_role = {ca.role: ca for ca in pq_platform.authorities.hierarchy()}
    agent_ca = by_role[AGENT_IDENTITY_ROLE]
    identity.verify_directly_issued_by(agent_ca.certificate)
    agent_ca.certificate.verify_directly_issued_by(listener_root)
    usage = agent_ca.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not is_server_identity_ca(agent_ca.certificate, listener_root)
    _agent_identity(pq_platform)  # the same CA again, no second one
    assert sum(1 for ca in pq_platform.authorities.hierarchy() if ca.role == AGENT_IDENTITY_ROLE) == 1


def test_agent_identities_under_a_classic_root_still_come_from_the_issuing_ca(platform: Platform) -> None:
    identity = _agent_identity(platform)

    issuer = platform.authorities.issuing_authority().issuer
    identity.verify_directly_issued_by(issuer.certificate)
    assert not any(ca.role == AGENT_IDENTITY_ROLE for ca in platform.authorities.hierarchy())


def test_crls_of_the_ml_dsa_hierarchy_stay_ml_dsa_and_the_listener_root_publishes_its_own(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    identity = _ensure(pq_platform, tmp_path, clock)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pq_platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("crl.pq.test",), "crl.pq.test"), actor="test"
    ).issued.certificate
    pq_platform.revocation.revoke_serial(format(leaf.serial_number, "x"), "keyCompromise", actor="test")
    server_ca = x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())[1]
    pq_platform.revocation.revoke_serial(format(server_ca.serial_number, "x"), "caCompromise", actor="test")
    by_role = {ca.role: ca for ca in pq_platform.authorities.hierarchy()}

    issuing = by_role["intermediate"]
    crl = x509.load_der_x509_crl(pq_platform.revocation.crl(issuing.id).der)
    assert crl.is_signature_valid(issuing.certificate.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    listener = by_role[LISTENER_ROOT_ROLE]
    root_crl = x509.load_der_x509_crl(pq_platform.revocation.crl(listener.id).der)
    assert root_crl.is_signature_valid(listener.certificate.public_key())  # type: ignore[arg-type]
    assert root_crl.get_revoked_certificate_by_serial_number(server_ca.serial_number) is not None
    # and the next start replaces the revoked server-identity CA under the same listener root
    assert _ensure(pq_platform, tmp_path, clock).reissued
    assert len(_listener_roots(pq_platform)) == 1


def test_ca_compromise_refuses_the_listener_root_and_rotates_nothing(pq_platform: Platform) -> None:
    pq_platform.authorities.ensure_tls_root(actor="test")
    listener = next(ca for ca in pq_platform.authorities.hierarchy() if ca.role == LISTENER_ROOT_ROLE)
    before = pq_platform.authorities.hierarchy()

    with pytest.raises(InvalidInput, match="is the root: a root cannot be revoked"):
        pq_platform.ca_rotation.compromise(listener.id, actor="test")

    assert pq_platform.authorities.hierarchy() == before


def test_a_server_identity_ca_the_ml_dsa_root_signed_before_the_fix_is_left_out(
    pq_platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    """What a failed 'serve' of an older release left: a server-identity CA under the ML-DSA
    root. It is neither used nor offered in the agents' bundle (which it would spoil: every CA
    there must be signed by the pinned root)."""
    authorities = pq_platform.authorities
    root = authorities.root()
    with authorities._mint.fresh_key("server-identity-1", KeyType.ML_DSA_65) as ref:
        stale = authorities._mint.signed_by_root(
            root, ref, build_server_identity_ca, SERVER_IDENTITY_ROLE, "Server Identity CA", 1
        )
        with authorities._uow() as uow:
            uow.cas.add(stale)

    identity = _ensure(pq_platform, tmp_path, clock)

    used = x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())[1]
    assert used != stale.certificate
    bundle = x509.load_pem_x509_certificates(bytes(ca_pem(pq_platform).body))
    (listener_root,) = _listener_roots(pq_platform)
    assert bundle[0] == listener_root
    assert stale.certificate not in bundle and used in bundle
    assert verify_bundle(bundle, fingerprint_sha256(listener_root)).server_cas == (used,)
