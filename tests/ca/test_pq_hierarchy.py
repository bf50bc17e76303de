"""A parallel ML-DSA hierarchy beside the classic one (issue 17): created by the authority
service, chosen by the internal-mtls-pq profile, revoked with ML-DSA-signed CRLs and OCSP
answers, renewed with the same key type, and judged by policy key_types. Verified with
``cryptography`` only: Debian 12's OpenSSL 3.0 cannot read ML-DSA keys."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp, verification
from cryptography.x509.oid import SignatureAlgorithmOID

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.errors import ConfigurationError, Conflict, InvalidInput
from certfleet.services import IssuanceResult
from certfleet.x509 import BadKey, KeyType, describe_public_key, generate_private_key
from tests.conftest import FakeClock

ML_DSA_65 = SignatureAlgorithmOID.ML_DSA_65


def _pq(platform: Platform) -> tuple[x509.Certificate, x509.Certificate]:
    root, issuing = platform.authorities.create_hierarchy("PQ Root", KeyType.ML_DSA_65, actor="test")
    return root.certificate, issuing.certificate


def _issue(
    platform: Platform, name: str, key_type: KeyType = KeyType.ML_DSA_65, team: str = "a"
) -> IssuanceResult:
    key = generate_private_key(key_type)
    request = IssuanceRequest("internal-mtls-pq", key.public_key(), (name,), name)
    return platform.issuance.issue(request, actor="test", team=team, private_key=key)


def _verify(
    root: x509.Certificate, leaf: x509.Certificate, chain: tuple[x509.Certificate, ...], name: str
) -> None:
    """A verifier over the post-quantum root only: RFC 5280 path building, ML-DSA signatures."""
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .time(leaf.not_valid_before_utc + dt.timedelta(minutes=5))
        .build_server_verifier(x509.DNSName(name))
    )
    path = verifier.verify(leaf, list(chain))
    assert path[-1] == root


def test_a_second_hierarchy_stands_beside_the_first_and_leaves_it_the_default(platform: Platform) -> None:
    classic_root = platform.authorities.root()
    classic_issuer = platform.authorities.issuing_authority().issuer

    root, issuing = _pq(platform)

    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    assert root.signature_algorithm_oid == issuing.signature_algorithm_oid == ML_DSA_65
    assert root.subject.rfc4514_string() == "CN=PQ Root Root CA,O=PQ Root"
    assert len(platform.authorities.hierarchy()) == 4
    # The first hierarchy is untouched and still the default for every other profile.
    assert platform.authorities.root() == classic_root
    assert platform.authorities.issuing_authority().issuer == classic_issuer
    tls = platform.issuance.issue(
        IssuanceRequest(
            "tls-server", generate_private_key(KeyType.EC_P256).public_key(), ("w.example.test",)
        ),
        actor="test",
    )
    assert tls.record.issuer_ca_id == classic_issuer.id


def test_the_same_name_twice_and_a_hierarchy_before_init_are_refused(
    platform: Platform, bare_platform: Platform
) -> None:
    _pq(platform)
    with pytest.raises(Conflict, match="a CA hierarchy named 'pq root' already exists"):
        platform.authorities.create_hierarchy("pq root", KeyType.ML_DSA_44, actor="test")
    assert len(platform.authorities.hierarchy()) == 4


def test_create_needs_an_initialised_data_directory(bare_platform: Platform) -> None:
    with pytest.raises(ConfigurationError, match="run 'certfleet init' first"):
        bare_platform.authorities.create_hierarchy("PQ Root", KeyType.ML_DSA_65, actor="test")


def test_the_pq_profile_issues_ml_dsa_leaves_from_the_pq_hierarchy(platform: Platform) -> None:
    root, issuing = _pq(platform)

    result = _issue(platform, "svc.a.example.test")

    leaf = result.issued.certificate
    leaf.verify_directly_issued_by(issuing)
    assert leaf.signature_algorithm_oid == ML_DSA_65
    _verify(root, leaf, result.issued.chain, "svc.a.example.test")
    # Honest sizes: an ML-DSA-65 key (1,952 bytes) and signature (3,309 bytes), with the
    # extensions about 5.8 KB (an ECDSA P-256 leaf of the same shape: under 1 KB).
    assert 5_300 < len(leaf.public_bytes(Encoding.DER)) < 6_000
    assert (result.record.key_algorithm, result.record.key_size) == ("ml-dsa-65", 1952 * 8)
    assert result.record.signature_algorithm == "ML-DSA-65"


def test_the_pq_profile_without_its_hierarchy_says_how_to_make_one(platform: Platform) -> None:
    with pytest.raises(Conflict, match=r"certfleet ca create --key-type ml-dsa-65 --name NAME"):
        _issue(platform, "svc.a.example.test")


def test_the_pq_profile_refuses_a_classic_key(platform: Platform) -> None:
    _pq(platform)
    with pytest.raises(
        BadKey, match="profile internal-mtls-pq certifies ml-dsa-65, ml-dsa-44, ml-dsa-87 keys, not ec-p256"
    ):
        _issue(platform, "svc.a.example.test", KeyType.EC_P256)


def test_revocation_is_signed_with_ml_dsa_by_crl_and_ocsp(platform: Platform) -> None:
    _, issuing = _pq(platform)
    result = _issue(platform, "svc.a.example.test")
    leaf = result.issued.certificate

    platform.revocation.revoke(result.record.serial, "keyCompromise", actor="test")

    crl = x509.load_der_x509_crl(platform.revocation.crl(result.record.issuer_ca_id or "").der)
    assert crl.signature_algorithm_oid == ML_DSA_65
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing, hashes.SHA1()).build()
    answer = ocsp.load_der_ocsp_response(platform.revocation.ocsp(request.public_bytes(Encoding.DER)).der)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.signature_algorithm_oid == ML_DSA_65
    # A delegated responder of the PQ CA: an ML-DSA key, certified by the PQ issuing CA.
    (responder,) = answer.certificates
    responder.verify_directly_issued_by(issuing)
    assert describe_public_key(responder.public_key()).label == "ml-dsa-65"
    responder_key = responder.public_key()
    assert isinstance(responder_key, mldsa.MLDSA65PublicKey)
    responder_key.verify(answer.signature, answer.tbs_response_bytes)


def test_renewal_reissues_from_the_pq_hierarchy_with_the_same_key_type(
    platform: Platform, clock: FakeClock
) -> None:
    root, _ = _pq(platform)
    first = _issue(platform, "svc.a.example.test").record

    clock.advance(dt.timedelta(days=80))
    report = platform.renewal.run_due()

    assert [o.serial for o in report.outcomes] == [first.serial]
    (_old, new) = platform.renewal.lineage(first)
    renewed = new.certificate()
    assert renewed.signature_algorithm_oid == ML_DSA_65
    assert describe_public_key(renewed.public_key()).label == "ml-dsa-65"
    assert new.issuer_ca_id == first.issuer_ca_id
    chain = tuple(platform.renewal.issuing_chain(new))
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .time(renewed.not_valid_before_utc + dt.timedelta(minutes=5))
        .build_server_verifier(x509.DNSName("svc.a.example.test"))
    )
    verifier.verify(renewed, list(chain))


def test_rotating_the_default_issuing_ca_leaves_the_pq_one_issuing(platform: Platform) -> None:
    _, issuing = _pq(platform)
    new, retired = platform.authorities.add_intermediate(None, actor="test")
    assert describe_public_key(new.certificate.public_key()).label == "ec-p256"
    pq_issuer = next(ca for ca in platform.authorities.hierarchy() if ca.certificate == issuing)
    assert pq_issuer.active and pq_issuer.id not in retired
    assert _issue(platform, "svc.a.example.test").record.issuer_ca_id == pq_issuer.id


POLICY = """\
rules:
  - name: team-a-post-quantum
    team: a
    enforce: false
    key_types: [ml-dsa-65]
"""


def test_policy_key_types_name_ml_dsa_and_the_report_shows_who_is_not_compliant(platform: Platform) -> None:
    _pq(platform)
    classic = platform.issuance.issue(
        IssuanceRequest(
            "tls-server", generate_private_key(KeyType.RSA_2048).public_key(), ("old.a.example.test",)
        ),
        actor="test",
        team="a",
    ).record.serial
    pq = _issue(platform, "new.a.example.test").record.serial
    other = platform.issuance.issue(
        IssuanceRequest(
            "tls-server", generate_private_key(KeyType.EC_P256).public_key(), ("b.example.test",)
        ),
        actor="test",
        team="b",
    ).record.serial
    platform.policy.apply(POLICY, source="pq.yaml", actor="test")

    judged = {v.record.serial: [x.rule for x in v.violations] for v in platform.policy.evaluate_inventory()}

    assert judged[classic] == ["team-a-post-quantum"]
    assert judged[pq] == []
    assert judged[other] == []


def test_the_pq_keys_are_encrypted_at_rest(platform: Platform) -> None:
    _pq(platform)
    keys = sorted((platform.settings.data_dir.keys).glob("*-root-*.key.pem"))
    assert keys, "the second hierarchy's root key is stored beside the first"
    for path in keys:
        assert path.stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(path.read_bytes(), None)


def test_the_compromise_playbook_refuses_a_parallel_hierarchys_issuing_ca(platform: Platform) -> None:
    _, issuing = _pq(platform)
    pq_issuer = next(ca for ca in platform.authorities.hierarchy() if ca.certificate == issuing)
    before = platform.authorities.hierarchy()

    with pytest.raises(InvalidInput, match="belongs to a parallel hierarchy"):
        platform.ca_rotation.compromise(pq_issuer.id, actor="test")

    assert platform.authorities.hierarchy() == before
