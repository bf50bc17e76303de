"""Every profile from every CA key type: the extensions RFC 5280 and the profile require,
path validation by the real openssl, and pkilint's RFC 5280 and CA/B Forum linters."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from certfleet.x509 import KeyType
from tests.ca.conftest import (
    BASE_URL,
    CLASSIC_KEY_TYPES,
    PROFILES,
    SERVER_PROFILES,
    CaKit,
    blocking,
    ca_kit,
    leaf_key,
    natural_leaf_key,
    pkilint,
)

EKUS = {
    "tls-server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "tls-client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "tls-server-client": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}


@pytest.mark.parametrize("profile", PROFILES)
def test_issued_certificate_carries_every_required_extension(kit: CaKit, profile: str) -> None:
    key = natural_leaf_key(kit.key_type, profile)
    issued = kit.issue(profile, key, names=("www.example.com", "192.0.2.10"))
    cert = issued.certificate
    issuer = kit.intermediate.certificate
    ext = cert.extensions

    cert.verify_directly_issued_by(issuer)
    assert cert.issuer == issuer.subject
    assert issued.chain == (issuer,)  # the root is not part of the chain handed out
    assert issued.fullchain == (cert, issuer)

    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False

    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())

    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == EKUS[profile]

    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["www.example.com"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    assert not san.critical  # the subject has a CN, so the SAN need not be critical

    crl_dp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [[n.value for n in dp.full_name or []] for dp in crl_dp] == [
        [f"{BASE_URL}/crl/{kit.intermediate.id}.crl"]
    ]
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(d.access_method, d.access_location.value) for d in aia} == {
        (AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/ca/{kit.intermediate.id}.cer"),
    }


def _key_usage(cert: x509.Certificate) -> x509.Extension[x509.KeyUsage]:
    return cert.extensions.get_extension_for_class(x509.KeyUsage)


@pytest.mark.parametrize(
    ("leaf_type", "profile", "key_encipherment"),
    [
        (KeyType.EC_P256, "tls-server", False),
        (KeyType.EC_P384, "tls-server-client", False),
        (KeyType.EC_P256, "tls-client", False),
        (KeyType.ED25519, "tls-client", False),
        # RSA key transport (TLS 1.2 RSA key exchange) needs keyEncipherment on servers.
        (KeyType.RSA_2048, "tls-server", True),
        (KeyType.RSA_2048, "tls-server-client", True),
        (KeyType.RSA_2048, "tls-client", False),
    ],
)
def test_key_usage_fits_the_leaf_key(leaf_type: KeyType, profile: str, key_encipherment: bool) -> None:
    cert = ca_kit(KeyType.EC_P256).issue(profile, leaf_key(leaf_type)).certificate
    ku = _key_usage(cert)
    assert ku.critical
    assert ku.value.digital_signature
    # An EC key cannot encipher; RFC 8813 section 3 forbids keyEncipherment for it.
    assert ku.value.key_encipherment is key_encipherment
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_agreement)
    assert not (ku.value.content_commitment or ku.value.data_encipherment)


@pytest.mark.parametrize(
    ("key_type", "signature_oid_name"),
    [
        (KeyType.EC_P256, "ecdsa-with-SHA256"),
        (KeyType.EC_P384, "ecdsa-with-SHA384"),
        (KeyType.RSA_2048, "sha256WithRSAEncryption"),
        (KeyType.RSA_3072, "sha256WithRSAEncryption"),
        (KeyType.RSA_4096, "sha256WithRSAEncryption"),
        (KeyType.ED25519, "ed25519"),
    ],
)
def test_leaf_signature_algorithm_follows_the_ca_key(key_type: KeyType, signature_oid_name: str) -> None:
    kit = ca_kit(key_type)
    cert = kit.issue("tls-client", natural_leaf_key(key_type, "tls-client")).certificate
    assert cert.signature_algorithm_oid._name == signature_oid_name
    public = kit.intermediate.certificate.public_key()
    expected = {
        KeyType.EC_P256: ec.EllipticCurvePublicKey,
        KeyType.EC_P384: ec.EllipticCurvePublicKey,
        KeyType.ED25519: ed25519.Ed25519PublicKey,
    }.get(key_type, rsa.RSAPublicKey)
    assert isinstance(public, expected)


def _openssl_verify(root: Path, chain: Path, cert: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", *extra, "-CAfile", str(root), "-untrusted", str(chain), str(cert)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_openssl_verifies_the_chain(kit: CaKit, profile: str, tmp_path: Path) -> None:
    issued = kit.issue(profile, natural_leaf_key(kit.key_type, profile))
    root, chain, cert = kit.write_pems(tmp_path, issued)
    plain = _openssl_verify(root, chain, cert)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert plain.stdout.strip() == f"{cert}: OK"
    purposes = (["sslserver"] if profile in SERVER_PROFILES else []) + (
        ["sslclient"] if profile != "tls-server" else []
    )
    for purpose in purposes:
        result = _openssl_verify(root, chain, cert, "-purpose", purpose)
        assert result.returncode == 0, f"{purpose}: {result.stdout}{result.stderr}"


def test_openssl_rejects_a_client_certificate_for_a_server(tmp_path: Path) -> None:
    """The EKU is enforced, so the positive purpose checks above mean something."""
    kit = ca_kit(KeyType.EC_P256)
    root, chain, cert = kit.write_pems(tmp_path, kit.issue("tls-client", leaf_key(KeyType.EC_P256)))
    result = _openssl_verify(root, chain, cert, "-purpose", "sslserver")
    assert result.returncode != 0
    assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_openssl_rejects_a_chain_without_the_intermediate(tmp_path: Path) -> None:
    kit = ca_kit(KeyType.EC_P256)
    root, chain, cert = kit.write_pems(tmp_path, kit.issue("tls-server", leaf_key(KeyType.EC_P256)))
    chain.write_text("")
    assert _openssl_verify(root, chain, cert).returncode != 0


@pytest.mark.parametrize("profile", PROFILES)
def test_pkilint_rfc5280_finds_no_errors(kit: CaKit, profile: str, tmp_path: Path) -> None:
    issued = kit.issue(profile, natural_leaf_key(kit.key_type, profile))
    _, _, cert = kit.write_pems(tmp_path, issued)
    findings = pkilint("lint_pkix_cert", cert)
    assert blocking(findings) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_pkilint_rfc5280_accepts_a_leaf_without_common_name(profile: str, tmp_path: Path) -> None:
    """With an empty subject the SAN must be critical (RFC 5280 section 4.2.1.6)."""
    kit = ca_kit(KeyType.EC_P256)
    issued = kit.issue(profile, leaf_key(KeyType.EC_P256), cn=None)
    assert issued.certificate.subject == x509.Name([])
    assert issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    _, _, cert = kit.write_pems(tmp_path, issued)
    assert blocking(pkilint("lint_pkix_cert", cert)) == []


def test_pkilint_rfc5280_finds_no_errors_in_the_ca_certificates(kit: CaKit, tmp_path: Path) -> None:
    for ca in (kit.root, kit.intermediate):
        path = tmp_path / f"{ca.role}.pem"
        path.write_text(ca.certificate.public_bytes(Encoding.PEM).decode())
        assert blocking(pkilint("lint_pkix_cert", path)) == [], ca.role


# Public-looking names on purpose (SANs www.example.com and example.com, base URL
# http://pki.example.com): the CA/B Forum linter checks public web certificates, where an
# internal name such as www.example.test is itself an ERROR (cabf.internal_domain_name).
# The CA/B Forum Baseline Requirements allow only RSA and ECDSA keys for CAs and server
# certificates, so this lint runs on the ECDSA and RSA hierarchies (Ed25519 is for private
# PKI only, and the tls-server profile refuses Ed25519 leaf keys anyway).
@pytest.mark.parametrize(
    "key_type", [k for k in CLASSIC_KEY_TYPES if k is not KeyType.ED25519], ids=lambda k: k.value
)
def test_pkilint_cabf_serverauth_finds_no_errors(key_type: KeyType, tmp_path: Path) -> None:
    kit = ca_kit(key_type)
    issued = kit.issue(
        "tls-server",
        natural_leaf_key(key_type, "tls-server"),
        names=("www.example.com", "example.com"),
        cn="www.example.com",
    )
    _, _, cert = kit.write_pems(tmp_path, issued)
    findings = pkilint("lint_cabf_serverauth_cert", cert, "-t", "DV-FINAL-CERTIFICATE")
    assert blocking(findings) == []
    # The linter really ran the CA/B Forum rules: it reports its (non-blocking) notes.
    assert any(f.code.startswith("cabf.") for f in findings)


def test_pkilint_output_is_read_by_severity(tmp_path: Path) -> None:
    """The runner reports an ERROR where there is one (a CA certificate without KeyUsage)."""
    kit = ca_kit(KeyType.EC_P256)
    now = kit.clock.now()
    bad = (
        x509.CertificateBuilder()
        .subject_name(kit.root.certificate.subject)
        .issuer_name(kit.root.certificate.subject)
        .public_key(kit.root_key.public_key())
        .serial_number(12345678901234567890)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(kit.root_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    path = tmp_path / "bad.pem"
    path.write_bytes(bad.public_bytes(Encoding.PEM))
    assert "pkix.ca_certificate_no_ku_extension" in {
        f.code for f in blocking(pkilint("lint_pkix_cert", path))
    }
