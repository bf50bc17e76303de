"""The CA hierarchy: a self-signed ten-year root (pathLen 1) over a five-year issuing
intermediate (pathLen 0)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from certfleet.ca import INTERMEDIATE_LIFETIME, ROOT_LIFETIME, CaUrls, ca_id_for
from tests.ca.conftest import BASE_URL, CaKit


def _ca_key_usage_is_for_signing_certificates(cert: x509.Certificate) -> None:
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign and ku.value.digital_signature
    assert not ku.value.key_encipherment


def test_root_is_self_signed_for_ten_years_with_path_length_one(kit: CaKit) -> None:
    root = kit.root.certificate
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)  # signed with its own key
    assert dt.timedelta(days=3652) == ROOT_LIFETIME
    assert root.not_valid_after_utc - root.not_valid_before_utc == ROOT_LIFETIME
    assert root.not_valid_before_utc <= kit.clock.now() < root.not_valid_after_utc
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    _ca_key_usage_is_for_signing_certificates(root)
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(root.public_key())
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example Root CA"
    assert root.serial_number > 0


def test_intermediate_is_issued_by_the_root_for_five_years_with_path_length_zero(kit: CaKit) -> None:
    root = kit.root.certificate
    inter = kit.intermediate.certificate
    assert inter.issuer == root.subject
    inter.verify_directly_issued_by(root)
    assert dt.timedelta(days=1826) == INTERMEDIATE_LIFETIME
    assert inter.not_valid_after_utc - inter.not_valid_before_utc == INTERMEDIATE_LIFETIME
    assert inter.not_valid_after_utc <= root.not_valid_after_utc
    bc = inter.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    _ca_key_usage_is_for_signing_certificates(inter)
    aki = inter.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    crl = inter.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in crl[0].full_name or []] == [f"{BASE_URL}/crl/{kit.root.id}.crl"]
    aia = inter.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/ca/{kit.root.id}.cer")
    ]
    assert inter.serial_number != root.serial_number


def test_ca_ids_are_short_stable_and_distinct(kit: CaKit) -> None:
    assert kit.root.id == ca_id_for(kit.root.certificate)
    assert len(kit.root.id) == 16 and int(kit.root.id, 16) >= 0
    assert kit.root.id != kit.intermediate.id
    assert kit.intermediate.parent_id == kit.root.id


def test_urls_are_built_from_the_public_base_url() -> None:
    urls = CaUrls("https://pki.example.com:8443/base")
    assert urls.crl("abc") == "https://pki.example.com:8443/base/crl/abc.crl"
    assert urls.ocsp() == "https://pki.example.com:8443/base/ocsp"
    assert urls.ca_issuers("abc") == "https://pki.example.com:8443/base/ca/abc.cer"
