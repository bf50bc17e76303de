"""Certificate profiles: what each kind of certificate may contain and for how long."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from certfleet.ca.errors import UnknownProfile

__all__ = ["PROFILES", "Profile", "get_profile"]

# CA/Browser Forum reserved policy identifier for domain-validated server certificates
# (Baseline Requirements 7.1.6.1); pkilint's CABF linter requires a reserved policy OID.
CABF_DOMAIN_VALIDATED = ObjectIdentifier("2.23.140.1.2.1")


@dataclass(frozen=True)
class Profile:
    """A certificate profile.

    ``default_validity`` is 90 days for server certificates: short enough that renewal is
    automated, long enough to survive a few failed renewals. ``max_validity`` is 398 days,
    the public web's historical ceiling.
    """

    name: str
    extended_key_usages: tuple[ObjectIdentifier, ...]
    default_validity: dt.timedelta
    max_validity: dt.timedelta
    require_san: bool
    allow_ed25519: bool
    policy_oids: tuple[ObjectIdentifier, ...] = ()
    uri_san: bool = False  # exactly one URI SAN, the identity (X509-SVID); no common name
    key_encipherment: bool = False  # RSA key transport beside signing (a SCEP RA)
    internal: bool = False  # issued by certfleet for itself, never on a requester's behalf
    # Which hierarchy issues (issue 17: classic and post-quantum chains side by side). ``ca``
    # names a hierarchy (the name given to ``ca create``/``init``) or a root or issuing CA id;
    # ``ca_key_type`` takes the hierarchy whose issuing CA has that key type. Neither: the
    # default hierarchy (the first one created).
    ca: str | None = None
    ca_key_type: str | None = None
    # The subject key types this profile certifies (empty: any key check_public_key takes);
    # the first is what a server-generated key is.
    key_types: tuple[str, ...] = ()

    @property
    def server_auth(self) -> bool:
        return ExtendedKeyUsageOID.SERVER_AUTH in self.extended_key_usages


_DAYS = dt.timedelta(days=1)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        # Ed25519 is not allowed for serverAuth: the CA/Browser Forum Baseline Requirements
        # permit only RSA and ECDSA subscriber keys, and most TLS clients would refuse it.
        Profile(
            name="tls-server",
            extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
            default_validity=90 * _DAYS,
            max_validity=398 * _DAYS,
            require_san=True,
            allow_ed25519=False,
            policy_oids=(CABF_DOMAIN_VALIDATED,),
        ),
        Profile(
            name="tls-client",
            extended_key_usages=(ExtendedKeyUsageOID.CLIENT_AUTH,),
            default_validity=90 * _DAYS,
            max_validity=398 * _DAYS,
            require_san=False,
            allow_ed25519=True,
        ),
        Profile(
            name="tls-server-client",
            extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            default_validity=90 * _DAYS,
            max_validity=398 * _DAYS,
            require_san=True,
            allow_ed25519=False,
        ),
        # X509-SVID (SPIFFE): one spiffe:// URI SAN, optional DNS names, usable as a TLS
        # server and client (mutual TLS between workloads). One hour by default, as SPIRE:
        # a workload's agent rotates it at half-life, so a stolen SVID is worth little; at
        # most a day, so an entry's --ttl cannot turn it into a long-lived credential.
        Profile(
            name="x509-svid",
            extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            default_validity=dt.timedelta(hours=1),
            max_validity=_DAYS,
            require_san=False,
            allow_ed25519=False,
            uri_san=True,
        ),
        # Internal mutual TLS where both ends are the team's own (issue 17): ML-DSA keys under
        # the ML-DSA-65 hierarchy (``certfleet ca create --key-type ml-dsa-65``), so neither
        # the chain nor the leaf is quantum-vulnerable. Browsers and the public web cannot
        # verify ML-DSA yet: this is for services whose TLS stacks the team controls.
        Profile(
            name="internal-mtls-pq",
            extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            default_validity=90 * _DAYS,
            max_validity=398 * _DAYS,
            require_san=False,
            allow_ed25519=False,
            ca_key_type="ml-dsa-65",
            key_types=("ml-dsa-65", "ml-dsa-44", "ml-dsa-87"),
        ),
    )
}


# The SCEP RA's certificate (RFC 8894 section 2.1): it signs replies and decrypts requests,
# so digitalSignature and keyEncipherment; and no extendedKeyUsage, because OpenSSL checks a
# CMS signer for the S/MIME purpose, which an EKU without emailProtection fails (certmonger
# then rejects every reply). Internal: the issuance service refuses it to any requester.
SCEP_RA_PROFILE = Profile(
    name="scep-ra",
    extended_key_usages=(),
    default_validity=365 * _DAYS,
    max_validity=398 * _DAYS,
    require_san=False,
    allow_ed25519=False,
    key_encipherment=True,
    internal=True,
)
_INTERNAL_PROFILES = {SCEP_RA_PROFILE.name: SCEP_RA_PROFILE}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES.get(name) or _INTERNAL_PROFILES[name]
    except KeyError:
        allowed = ", ".join(PROFILES)
        raise UnknownProfile(f"unknown profile {name!r}: expected one of {allowed}") from None
