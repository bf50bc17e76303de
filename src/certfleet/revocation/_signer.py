"""Delegated OCSP responder certificates (RFC 6960 section 4.2.2.2)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certfleet.revocation._issuers import IssuingCa
from certfleet.x509 import key_usage
from certfleet.x509.signing import sign_certificate

__all__ = ["RESPONDER_BACKDATE", "build_responder_certificate", "rotation_due"]

# Absorbs clock skew between certfleet and relying parties, as the CA does for leaves.
RESPONDER_BACKDATE = dt.timedelta(minutes=1)


def _responder_name(ca: x509.Certificate) -> x509.Name:
    organization = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    common = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ca_name = str(common[0].value) if common else "certfleet CA"
    attributes = (
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(organization[0].value))] if organization else []
    )
    cn = f"{ca_name} OCSP Responder"
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn[:64]))
    return x509.Name(attributes)


def build_responder_certificate(
    *,
    ca: IssuingCa,
    ca_key: CertificateIssuerPrivateKeyTypes,
    public_key: CertificatePublicKeyTypes,
    serial_number: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.Certificate:
    """A short-lived certificate that lets ``public_key`` sign OCSP responses for ``ca``.

    It carries id-kp-OCSPSigning (the mark of a delegated responder, section 4.2.2.2) and
    id-pkix-ocsp-nocheck (4.2.2.2.1): clients need not check its own revocation, which is
    safe only because it lives briefly and is replaced automatically.
    """
    not_before = now - RESPONDER_BACKDATE
    not_after = min(not_before + lifetime, ca.certificate.not_valid_after_utc)
    issuer_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_responder_name(ca.certificate))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(digital_signature=True),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    )
    return sign_certificate(builder, ca_key)


def rotation_due(certificate: x509.Certificate, now: dt.datetime, response_validity: dt.timedelta) -> bool:
    """Replace a responder certificate at half its lifetime, and in any case before it has
    less time left than one response is valid (a response must not outlive its signer)."""
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    remaining = certificate.not_valid_after_utc - now
    return remaining <= lifetime / 2 or remaining <= response_validity
