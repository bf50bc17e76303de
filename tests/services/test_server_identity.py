"""The HTTPS listener's certificate: issued once, reused while it fits, reissued when not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.app import Platform
from certfleet.ca import SERVER_IDENTITY_ROLE, IssuanceRequest, is_server_identity_ca
from certfleet.services.server_identity import DEFAULT_NAMES, ServerIdentity, ensure_server_identity
from certfleet.x509 import KeyType, generate_private_key, to_pem
from tests.conftest import FakeClock

PASSWORD = b"test-passphrase"


def _ensure(platform: Platform, tls: Path, clock: FakeClock, *names: str) -> ServerIdentity:
    return ensure_server_identity(platform.issuance, tls, names, PASSWORD, clock)


def _leaf(identity: ServerIdentity) -> x509.Certificate:
    return x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())[0]


def _leaf_issuer(identity: ServerIdentity) -> x509.Certificate:
    return x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())[1]


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


@pytest.fixture
def tls(tmp_path: Path) -> Path:
    return tmp_path / "tls"


def test_first_start_issues_an_encrypted_key_and_a_chain(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    identity = _ensure(platform, tls, clock, "certs.example.test")

    assert identity.reissued
    chain = x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())
    assert len(chain) == 2  # leaf and issuing CA: clients need only the root
    chain[0].verify_directly_issued_by(chain[1])
    assert _names(chain[0]) == {"localhost", "127.0.0.1", "::1", "certs.example.test"}
    assert identity.key_file.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in identity.key_file.read_bytes()
    key = serialization.load_pem_private_key(identity.key_file.read_bytes(), PASSWORD)
    assert key.public_key() == chain[0].public_key()
    serial = format(chain[0].serial_number, "x")
    assert platform.inventory.find(serial).tags == ("certfleet-server",)


def test_restart_with_the_same_names_reuses_it(platform: Platform, tls: Path, clock: FakeClock) -> None:
    first = _ensure(platform, tls, clock, "certs.example.test")
    clock.advance(dt.timedelta(days=59))  # still in the first two thirds of 90 days

    again = _ensure(platform, tls, clock, "CERTS.example.test")

    assert not again.reissued
    assert _leaf(again) == _leaf(first)


def test_changed_names_reissue(platform: Platform, tls: Path, clock: FakeClock) -> None:
    first = _leaf(_ensure(platform, tls, clock, "certs.example.test"))

    identity = _ensure(platform, tls, clock, "certs.example.test", "10.9.8.7")

    assert identity.reissued
    assert _leaf(identity) != first
    assert "10.9.8.7" in _names(_leaf(identity))
    assert _ensure(platform, tls, clock).reissued  # and dropping a name too


def test_last_third_of_lifetime_reissues(platform: Platform, tls: Path, clock: FakeClock) -> None:
    first = _leaf(_ensure(platform, tls, clock))
    clock.advance(dt.timedelta(days=61))  # 29 of 90 days left

    identity = _ensure(platform, tls, clock)

    assert identity.reissued
    assert _leaf(identity).not_valid_after_utc > first.not_valid_after_utc


def test_a_key_that_does_not_match_or_a_broken_file_reissues(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    identity = _ensure(platform, tls, clock)
    stray = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD),
    )
    identity.key_file.write_bytes(stray)

    assert _ensure(platform, tls, clock).reissued
    identity.certificate_file.write_text("not a certificate")
    assert _ensure(platform, tls, clock).reissued
    assert not _ensure(platform, tls, clock).reissued


def test_the_listener_certificate_comes_from_the_dedicated_server_identity_ca(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    identity = _ensure(platform, tls, clock)

    leaf, issuer = x509.load_pem_x509_certificates(identity.certificate_file.read_bytes())
    root = platform.authorities.root().certificate
    issuing = platform.authorities.issuing_authority().issuer.certificate
    assert is_server_identity_ca(issuer, root)
    assert issuer != issuing
    leaf.verify_directly_issued_by(issuer)
    by_role = {ca.role for ca in platform.authorities.hierarchy() if ca.certificate == issuer}
    assert by_role == {SERVER_IDENTITY_ROLE}


def test_no_other_issuance_path_signs_with_the_server_identity_ca(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    server_ca = _leaf_issuer(_ensure(platform, tls, clock))
    key = generate_private_key(KeyType.EC_P256)

    # The normal path, for the server's own names, with the server's profile.
    issued = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("localhost", "127.0.0.1")), actor="test"
    ).issued

    assert platform.authorities.issuing_authority().issuer.role == "intermediate"
    assert issued.chain[0] != server_ca
    assert issued.certificate.issuer != server_ca.subject
    with pytest.raises((ValueError, InvalidSignature)):
        issued.certificate.verify_directly_issued_by(server_ca)


def test_a_ca_rotation_leaves_the_server_identity_ca_and_the_listener_alone(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    first = _ensure(platform, tls, clock)
    platform.ca_rotation.rotate(None, actor="test")

    again = _ensure(platform, tls, clock)

    assert not again.reissued
    assert _leaf_issuer(again) == _leaf_issuer(first)


def test_a_data_dir_from_before_the_server_identity_ca_upgrades_on_the_next_start(
    platform: Platform, tls: Path, clock: FakeClock
) -> None:
    # What serve wrote before: the listener's certificate from the issuing CA.
    key = generate_private_key(KeyType.EC_P256)
    old = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), DEFAULT_NAMES, "localhost"), actor="system:serve"
    )
    tls.mkdir()
    (tls / "server.crt").write_text(to_pem(old.issued.fullchain))
    (tls / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD),
        )
    )
    assert not any(ca.role == SERVER_IDENTITY_ROLE for ca in platform.authorities.hierarchy())

    identity = _ensure(platform, tls, clock)

    assert identity.reissued
    assert is_server_identity_ca(_leaf_issuer(identity), platform.authorities.root().certificate)


def test_a_revoked_server_identity_ca_is_replaced(platform: Platform, tls: Path, clock: FakeClock) -> None:
    compromised = _leaf_issuer(_ensure(platform, tls, clock))
    platform.revocation.revoke_serial(format(compromised.serial_number, "x"), "caCompromise", actor="test")

    identity = _ensure(platform, tls, clock)

    assert identity.reissued
    assert _leaf_issuer(identity) != compromised
