"""The CA hierarchy: a self-signed root (pathLen 1) and issuing intermediates (pathLen 0)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from certfleet.ca._serials import new_serial_number
from certfleet.x509 import key_usage, spki_sha256
from certfleet.x509.signing import sign_certificate

__all__ = [
    "INTERMEDIATE_LIFETIME",
    "ROOT_LIFETIME",
    "CaCertificate",
    "CaUrls",
    "build_intermediate",
    "build_root",
    "ca_id_for",
    "chain_below_root",
    "intermediate_builder",
]

ROOT_LIFETIME = dt.timedelta(days=3652)  # ten years
INTERMEDIATE_LIFETIME = dt.timedelta(days=1826)  # five years
# Backdating absorbs clock skew between the CA and relying parties.
BACKDATE = dt.timedelta(minutes=1)


def ca_id_for(cert: x509.Certificate) -> str:
    """A stable short identifier: the first 16 hex digits of SHA-256 over the SPKI."""
    return spki_sha256(cert.public_key())[:16]


@dataclass(frozen=True)
class CaUrls:
    """Where relying parties fetch revocation data and issuer certificates (plain HTTP)."""

    base_url: str

    def crl(self, ca_id: str) -> str:
        return f"{self.base_url}/crl/{ca_id}.crl"

    def ocsp(self) -> str:
        return f"{self.base_url}/ocsp"

    def ca_issuers(self, ca_id: str) -> str:
        return f"{self.base_url}/ca/{ca_id}.cer"


@dataclass(frozen=True)
class CaCertificate:
    """One CA of the hierarchy as the database records it."""

    id: str
    name: str
    role: str  # "root" or "intermediate"
    parent_id: str | None
    certificate: x509.Certificate
    key_backend: str
    key_ref: str
    active: bool

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def chain_below_root(cas: Iterable[CaCertificate], issuer_ca_id: str | None) -> tuple[x509.Certificate, ...]:
    """The CA certificates from ``issuer_ca_id`` up to the root, the root left out: what a leaf
    that CA issued is served with (the relying party holds the root)."""
    by_id = {ca.id: ca for ca in cas}
    chain: list[x509.Certificate] = []
    ca = by_id.get(issuer_ca_id or "")
    while ca is not None and ca.role != "root":
        chain.append(ca.certificate)
        ca = by_id.get(ca.parent_id or "")
    return tuple(chain)


def _ca_key_usage() -> x509.KeyUsage:
    return key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_root(ca_name: str, key: CertificateIssuerPrivateKeyTypes, now: dt.datetime) -> x509.Certificate:
    public = key.public_key()
    subject = _name(f"{ca_name} Root CA", ca_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(new_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return sign_certificate(builder, key)


def build_intermediate(
    ca_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    root_id: str,
    urls: CaUrls,
    now: dt.datetime,
    generation: int = 1,
) -> x509.Certificate:
    builder = intermediate_builder(
        _name(f"{ca_name} Issuing CA {generation}", ca_name), key, root, root_id, urls, now
    )
    return sign_certificate(builder, root_key)


def intermediate_builder(
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    root_id: str,
    urls: CaUrls,
    now: dt.datetime,
) -> x509.CertificateBuilder:
    """What every intermediate under the root has (pathLen 0, the root's CRL and issuer URLs),
    ready for role-specific extensions and the root's signature."""
    public = key.public_key()
    not_after = min(now - BACKDATE + INTERMEDIATE_LIFETIME, root.not_valid_after_utc)
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(new_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .add_extension(crl_distribution_points(urls.crl(root_id)), critical=False)
        .add_extension(authority_information_access(urls.ca_issuers(root_id)), critical=False)
    )


def crl_distribution_points(crl_url: str) -> x509.CRLDistributionPoints:
    """One distribution point with a full name (RFC 5280 section 4.2.1.13): the issuer's CRL."""
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(crl_url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def authority_information_access(
    ca_issuers_url: str, ocsp_url: str | None = None
) -> x509.AuthorityInformationAccess:
    """The issuer's OCSP responder (leaves only) and its certificate (RFC 5280 section 4.2.2.1)."""
    descriptions = (
        []
        if ocsp_url is None
        else [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
            )
        ]
    )
    descriptions.append(
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url)
        )
    )
    return x509.AuthorityInformationAccess(descriptions)
