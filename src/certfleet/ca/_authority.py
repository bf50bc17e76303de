"""The issuing authority: validates a request against a profile, then signs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

from certfleet.ca._hierarchy import (
    BACKDATE,
    CaCertificate,
    CaUrls,
    authority_information_access,
    crl_distribution_points,
)
from certfleet.ca._profiles import Profile, get_profile
from certfleet.ca.errors import ValidityTooLong
from certfleet.clock import Clock
from certfleet.x509 import (
    BadKey,
    BadName,
    KeyDescription,
    SubjectName,
    check_public_key,
    key_usage,
    parse_names,
)
from certfleet.x509.signing import sign_certificate

__all__ = ["Authority", "IssuanceRequest", "IssuedCertificate", "ValidatedRequest"]


@dataclass(frozen=True)
class IssuanceRequest:
    """What a requester asks for. ``names`` are the SANs (DNS names or IP addresses);
    ``uris`` URI SANs, which only a profile with ``uri_san`` takes (an X509-SVID's one
    SPIFFE ID); ``lifetime`` a validity shorter than a day (SVIDs live an hour), exclusive
    with ``validity_days``."""

    profile: str
    public_key: CertificatePublicKeyTypes
    names: tuple[str, ...] = ()
    common_name: str | None = None
    validity_days: int | None = None
    uris: tuple[str, ...] = ()
    lifetime: dt.timedelta | None = None


@dataclass(frozen=True)
class ValidatedRequest:
    profile: Profile
    public_key: CertificatePublicKeyTypes
    key: KeyDescription
    names: tuple[SubjectName, ...]
    common_name: str | None
    lifetime: dt.timedelta
    uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuedCertificate:
    """A signed leaf and the issuing chain without it (intermediate first, root excluded)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    issuer_id: str
    profile: str
    fullchain: tuple[x509.Certificate, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fullchain", (self.certificate, *self.chain))


def _check_uris(request: IssuanceRequest, profile: Profile) -> tuple[str, ...]:
    """X509-SVID section 2: exactly one URI SAN, the SPIFFE ID (its syntax is checked by
    ``certfleet.spiffe`` before it gets here); no other profile takes URI names."""
    if not profile.uri_san:
        if request.uris:
            raise BadName(f"profile {profile.name} takes no URI names")
        return ()
    if len(request.uris) != 1 or not request.uris[0].startswith("spiffe://"):
        raise BadName(f"profile {profile.name} needs exactly one spiffe:// URI name")
    return request.uris


def _check_lifetime(request: IssuanceRequest, profile: Profile) -> dt.timedelta:
    assert request.lifetime is not None
    if request.validity_days is not None:
        raise ValidityTooLong("give either a validity in days or a lifetime, not both")
    if request.lifetime < dt.timedelta(minutes=1):
        raise ValidityTooLong(f"lifetime must be at least one minute, got {request.lifetime}")
    if request.lifetime > profile.max_validity:
        raise ValidityTooLong(
            f"lifetime of {request.lifetime} exceeds profile {profile.name}'s maximum "
            f"of {profile.max_validity}"
        )
    return request.lifetime


def _leaf_key_usage(public_key: CertificatePublicKeyTypes, profile: Profile) -> x509.KeyUsage:
    # RFC 5480 / CABF: EC and EdDSA keys only sign; an RSA key of a TLS server may also be
    # used for RSA key transport (keyEncipherment) by old TLS 1.2 clients.
    rsa_transport = isinstance(public_key, rsa.RSAPublicKey) and (
        profile.server_auth or profile.key_encipherment
    )
    return key_usage(digital_signature=True, key_encipherment=rsa_transport)


class Authority:
    """Signs leaf certificates with one issuing CA.

    It only validates and signs: recording the serial before signing and the certificate
    afterwards is the caller's job (see ``certfleet.lifecycle``).
    """

    def __init__(
        self,
        issuer: CaCertificate,
        issuer_key: CertificateIssuerPrivateKeyTypes,
        chain: tuple[x509.Certificate, ...],
        urls: CaUrls,
        clock: Clock,
    ) -> None:
        self.issuer = issuer
        self._key = issuer_key
        self._chain = chain
        self._urls = urls
        self._clock = clock

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The issuing chain handed out with each leaf: the issuing CA and any CA above it,
        excluding the self-signed root."""
        return self._chain

    def validate(self, request: IssuanceRequest) -> ValidatedRequest:
        profile = get_profile(request.profile)
        key = check_public_key(request.public_key, allow_ed25519=profile.allow_ed25519)
        if profile.key_types and key.label not in profile.key_types:
            raise BadKey(
                f"profile {profile.name} certifies {', '.join(profile.key_types)} keys, not {key.label}"
            )
        names = parse_names(request.names)
        uris = _check_uris(request, profile)
        common_name = request.common_name.strip() if request.common_name else None
        if common_name and profile.uri_san:
            raise BadName(f"profile {profile.name} identifies by its URI name: it takes no common name")
        if common_name:
            cn_name = SubjectName.parse(common_name)
            if not names:
                # Every profile carries a SAN: RFC 6125 section 6.4.4 clients match names
                # only against it when it is present, and the CN is a legacy copy.
                names = (cn_name,)
            elif names and cn_name not in names:
                raise BadName(f"common name {common_name!r} is not one of the subject alternative names")
            if len(common_name) > 64:
                raise BadName("common name is longer than 64 characters (RFC 5280 ub-common-name)")
            common_name = cn_name.value
        if profile.require_san and not names:
            raise BadName(f"profile {profile.name} requires at least one DNS name or IP address")
        if not names and not common_name and not uris:
            raise BadName("a certificate needs a common name or at least one subject alternative name")
        if request.lifetime is not None:
            lifetime = _check_lifetime(request, profile)
        elif request.validity_days is None:
            lifetime = profile.default_validity
        else:
            if request.validity_days < 1:
                raise ValidityTooLong(f"validity must be at least 1 day, got {request.validity_days}")
            # Compare the day count before building a timedelta: a huge value overflows it.
            if request.validity_days > profile.max_validity.days:
                raise ValidityTooLong(
                    f"validity of {request.validity_days} days exceeds profile {profile.name}'s "
                    f"maximum of {profile.max_validity.days} days"
                )
            lifetime = dt.timedelta(days=request.validity_days)
        return ValidatedRequest(profile, request.public_key, key, names, common_name, lifetime, uris)

    def sign(self, request: ValidatedRequest, serial_number: int) -> IssuedCertificate:
        now = self._clock.now()
        issuer_cert = self.issuer.certificate
        not_before = now - BACKDATE
        # Never outlive the issuer: a leaf valid past its CA fails path validation anyway.
        not_after = min(not_before + request.lifetime, issuer_cert.not_valid_after_utc)
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, request.common_name)] if request.common_name else []
        )
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        profile = request.profile
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject)
            .public_key(request.public_key)
            .serial_number(serial_number)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(request.public_key, profile), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
            )
            .add_extension(crl_distribution_points(self._urls.crl(self.issuer.id)), critical=False)
            .add_extension(
                authority_information_access(self._urls.ca_issuers(self.issuer.id), self._urls.ocsp()),
                critical=False,
            )
        )
        if request.names or request.uris:
            # RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
            uris: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in request.uris]
            builder = builder.add_extension(
                x509.SubjectAlternativeName(uris + [n.general_name() for n in request.names]),
                critical=not request.common_name,
            )
        if profile.extended_key_usages:  # none for the SCEP RA (see SCEP_RA_PROFILE)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(list(profile.extended_key_usages)), critical=False
            )
        if profile.policy_oids:
            builder = builder.add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in profile.policy_oids]),
                critical=False,
            )
        cert = sign_certificate(builder, self._key)  # in-process or in an HSM (x509.signing)
        return IssuedCertificate(cert, self._chain, self.issuer.id, profile.name)
