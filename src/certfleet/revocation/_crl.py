"""Certificate revocation lists (RFC 5280 section 5): complete and delta CRLs."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.revocation._reasons import RevocationReason
from certfleet.x509.signing import sign_crl

__all__ = ["CrlKind", "RevokedEntry", "build_crl"]


class CrlKind(enum.StrEnum):
    FULL = "full"
    DELTA = "delta"


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One revoked serial as a CRL lists it."""

    serial_number: int
    revoked_at: dt.datetime
    reason: RevocationReason = RevocationReason.UNSPECIFIED
    invalidity_date: dt.datetime | None = None

    def to_x509(self) -> x509.RevokedCertificate:
        # RFC 5280 section 5.3.1: "the reason code unspecified SHOULD be absent", and the
        # CA/B Forum Baseline Requirements 7.2.2 forbid it outright. The reason extension is
        # built once per reason and shared: a million entries reuse seven objects.
        builder = (
            x509.RevokedCertificateBuilder(extensions=_REASON_EXTENSIONS[self.reason])
            .serial_number(self.serial_number)
            .revocation_date(self.revoked_at)
        )
        if self.invalidity_date is not None:
            # RFC 5280 section 5.3.2: when the key was (suspected) compromised, non-critical.
            builder = builder.add_extension(x509.InvalidityDate(self.invalidity_date), critical=False)
        return builder.build()


_REASON_EXTENSIONS: dict[RevocationReason, list[x509.Extension[x509.ExtensionType]]] = {
    reason: []
    if reason is RevocationReason.UNSPECIFIED
    else [x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(reason.flag))]
    for reason in RevocationReason
}


def build_crl(
    *,
    issuer: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    freshest_crl_url: str | None = None,
    base_number: int | None = None,
) -> bytes:
    """Build and sign a CRL; DER out.

    ``entries`` is consumed once: each becomes a small cryptography object and the whole
    list goes to the builder in one call (``add_revoked_certificate`` copies the list on
    every call, quadratic in the entries). ``base_number`` makes it a delta CRL (RFC 5280
    section 5.2.4); ``freshest_crl_url`` points a complete CRL at its deltas (5.2.6).
    """
    if next_update <= this_update:
        raise ValueError("nextUpdate must be later than thisUpdate")
    if number < 0 or number.bit_length() > 159:
        raise ValueError("a CRL number is a non-negative integer of at most 20 octets (RFC 5280 5.2.3)")
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=[],
        revoked_certificates=[entry.to_x509() for entry in entries],
    )
    # RFC 5280 section 5.2.1 and 5.2.3: conforming CRL issuers MUST include the AKI and the
    # CRL number, both non-critical.
    builder = builder.add_extension(aki, critical=False).add_extension(x509.CRLNumber(number), critical=False)
    if base_number is not None:
        # Section 5.2.4: the delta CRL indicator is a critical extension.
        builder = builder.add_extension(x509.DeltaCRLIndicator(base_number), critical=True)
    if freshest_crl_url is not None:
        # Section 5.2.6: the freshest CRL extension MUST be non-critical.
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(freshest_crl_url)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.FreshestCRL([point]), critical=False)
    crl = sign_crl(builder, key)  # in-process or in an HSM (x509.signing)
    return crl.public_bytes(Encoding.DER)
