"""EST enrolment (RFC 7030): Basic credentials per team, and issuance through the issuance
service (policy engine, blocked keys, inventory record with source ``est`` and the
credential's team, audit entry) for ``simpleenroll``, ``simplereenroll`` and ``serverkeygen``.

The edge (:mod:`certfleet.api.est`) parses the body with :mod:`certfleet.protocols.est` and
hands this service a CSR whose signature verified; everything that decides who may have
which certificate is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.access import EstCredential, EstCredentialRepository, MintedEstCredential, mint_est_credential
from certfleet.audit import AuditLog, AuditRepository
from certfleet.ca import IssuanceRequest, get_profile
from certfleet.clock import Clock
from certfleet.errors import (
    CertfleetError,
    ConfigurationError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from certfleet.inventory import CertificateRepository, Source, Status
from certfleet.services.issuance import (
    RESERVED_TAG_PREFIXES,
    RESERVED_TAGS,
    IssuanceResult,
    IssuanceService,
)
from certfleet.x509 import (
    KeyType,
    csr_public_key,
    describe_public_key,
    fingerprint_sha256,
    generate_private_key,
    load_certificates,
    names_from_csr,
)

__all__ = ["DEFAULT_EST_PROFILE", "EstService", "SigningIdentity", "listener_identity"]

# A certificate, its private key and the CAs above it (root excluded).
SigningIdentity = tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes, tuple[x509.Certificate, ...]]

# Client and server authentication: an EST client re-enrols by presenting its certificate
# as a TLS client certificate (RFC 7030 section 3.3.2), which needs clientAuth.
DEFAULT_EST_PROFILE = "tls-server-client"


class EstUnitOfWork(Protocol):
    @property
    def est_credentials(self) -> EstCredentialRepository: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class EstUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AbstractContextManager[EstUnitOfWork]: ...


class EstCredentialLookup(Protocol):
    def get(self, credential_id: str) -> EstCredential | None:
        """The credential as committed now (never a copy cached across requests)."""
        ...


class EstService:
    """``issuance`` is the composition root's issuance service whose records say ``est``.
    ``signing_identity`` gives the listener's certificate and key (serverkeygen's signed key
    packages). ``lookup`` reads the credential of each request without a unit of work (one
    statement; no cache across requests, so a revocation refuses the next request).
    ``count`` receives each request's outcome (issued, refused, unauthenticated,
    bad_request, error) for the Prometheus counter the composition root keeps."""

    def __init__(
        self,
        uow: EstUnitOfWorkFactory,
        issuance: IssuanceService,
        ca_certificates: Callable[[], Sequence[x509.Certificate]],
        clock: Clock,
        *,
        count: Callable[[str], None] | None = None,
        signing_identity: Callable[[], SigningIdentity] | None = None,
        lookup: EstCredentialLookup | None = None,
    ) -> None:
        self._lookup = lookup
        self._signing_identity = signing_identity
        self._uow = uow
        self._issuance = issuance
        self._ca_certificates = ca_certificates
        self._clock = clock
        self._count = count or (lambda outcome: None)

    # -- credentials ---------------------------------------------------------------------

    def create_credential(
        self, team: str, *, profile: str | None = None, names: Sequence[str] = (), actor: str
    ) -> MintedEstCredential:
        if profile is not None:
            get_profile(profile)  # an unknown profile is refused now, not at the first enrolment
        minted = mint_est_credential(team, profile, names, self._clock.now())
        with self._uow() as uow:
            uow.est_credentials.add(minted.record)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "est.credential.created",
                minted.record.username,
                {
                    "team": minted.record.team,
                    "profile": profile,
                    "names": [p.text for p in minted.record.allow_names],
                },
            )
        return minted

    def list_credentials(self) -> Sequence[EstCredential]:
        with self._uow(read_only=True) as uow:
            return list(uow.est_credentials.list())

    def revoke_credential(self, credential_id: str, *, actor: str) -> None:
        credential_id = EstCredential.id_of(credential_id) or credential_id
        with self._uow() as uow:
            if not uow.est_credentials.revoke(credential_id, self._clock.now()):
                raise NotFound(f"no active EST credential {credential_id!r}")
            AuditLog(uow.audit, self._clock).record(actor, "est.credential.revoked", f"est_{credential_id}")

    def authenticate(self, username: str, password: str) -> EstCredential:
        """The active credential these Basic credentials name; one message for every failure,
        so a caller cannot tell an unknown user from a wrong password."""
        credential_id = EstCredential.id_of(username)
        record = None
        if credential_id is not None and self._lookup is not None:
            record = self._lookup.get(credential_id)
        elif credential_id is not None:
            with self._uow(read_only=True) as uow:
                record = uow.est_credentials.get(credential_id)
        if record is None or record.revoked_at is not None or not record.matches(password):
            raise Unauthenticated("unknown, revoked or wrong EST credentials")
        return record

    # -- enrolment -----------------------------------------------------------------------

    def signing_identity(self) -> SigningIdentity:
        """The EST server's certificate and key, which sign a server-generated key package
        (RFC 7030 section 4.4.2: "signed by the party that generated the private key")."""
        if self._signing_identity is None:
            raise ConfigurationError("this EST service has no signing identity")
        return self._signing_identity()

    def count(self, outcome: str) -> None:
        self._count(outcome)

    def ca_certificates(self) -> Sequence[x509.Certificate]:
        """RFC 7030 section 4.1.3: the issuing chain and the current root."""
        return self._ca_certificates()

    def enrol(
        self, csr: x509.CertificateSigningRequest, credential: EstCredential, label: str | None
    ) -> IssuanceResult:
        """``simpleenroll``: the CSR's names under the credential's team, profile and patterns."""
        profile = self._profile(label, credential.profile, "this EST credential")
        common_name, names = names_from_csr(csr)
        request = IssuanceRequest(profile, csr_public_key(csr), tuple(names), common_name)
        return self._issue(request, f"est:{credential.id}", credential.team, credential)

    def server_keygen(
        self, csr: x509.CertificateSigningRequest, credential: EstCredential, label: str | None
    ) -> IssuanceResult:
        """``serverkeygen``: as ``enrol``, for a key the server generates of the type of the
        CSR's own key; the key goes back to the requester only and is never stored."""
        profile = self._profile(label, credential.profile, "this EST credential")
        common_name, names = names_from_csr(csr)
        key_type = KeyType.parse(describe_public_key(csr_public_key(csr)).label)
        private_key: CertificateIssuerPrivateKeyTypes = generate_private_key(key_type)
        request = IssuanceRequest(profile, private_key.public_key(), tuple(names), common_name)
        return self._issue(request, f"est:{credential.id}", credential.team, credential, private_key)

    def reenrol(
        self, csr: x509.CertificateSigningRequest, current_der: bytes, label: str | None
    ) -> IssuanceResult:
        """``simplereenroll``: the TLS client certificate is the certificate being renewed
        (RFC 7030 section 4.2.2): it must be one of ours, still active, and the CSR must ask
        for exactly its Subject and subjectAltName. The new certificate keeps its team."""
        current = x509.load_der_x509_certificate(current_der)
        with self._uow(read_only=True) as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint_sha256(current))
        if record is None or record.issuer_ca_id is None:
            raise Forbidden("the TLS client certificate is not one this CA issued")
        if record.source not in _RENEWABLE or _reserved(record.tags):
            # certfleet's own certificates (listener, agent identities, SCEP RA) and SVIDs
            # are renewed by certfleet, never copied into an ordinary certificate over EST.
            raise Forbidden(
                f"a certificate of source {record.source.value} with tags "
                f"{', '.join(record.tags) or 'none'} cannot re-enrol over EST"
            )
        status = record.effective_status(self._clock.now())
        if status is not Status.ACTIVE:
            raise Forbidden(f"the TLS client certificate is {status.value}: it cannot re-enrol")
        _require_same_identity(csr, current)
        profile = self._profile(label, record.profile, "the certificate being renewed")
        common_name, names = names_from_csr(csr)
        request = IssuanceRequest(profile, csr_public_key(csr), tuple(names), common_name)
        return self._issue(request, f"est:reenrol:{record.serial}", record.team, None)

    def check_label(self, label: str | None) -> None:
        """Raise NotFound unless ``label`` is None or names a profile."""
        self._profile(label, None, None)

    def _profile(self, label: str | None, bound: str | None, holder: str | None) -> str:
        """The CA label of the URL (RFC 7030 section 3.2.2) names a profile. A ``holder``
        (this credential, the certificate being renewed) bound to a profile may use only that
        one: a renewal cannot widen a clientAuth certificate into a serverAuth one."""
        if label is not None:
            try:
                get_profile(label)
            except InvalidInput:
                raise NotFound(f"no EST CA label {label!r}: labels are profile names") from None
            if holder is not None and bound is not None and bound != label:
                raise Forbidden(f"{holder} may enrol only under profile {bound!r}, not {label!r}")
            return label
        return bound or DEFAULT_EST_PROFILE

    def _issue(
        self,
        request: IssuanceRequest,
        actor: str,
        team: str | None,
        credential: EstCredential | None,
        private_key: CertificateIssuerPrivateKeyTypes | None = None,
    ) -> IssuanceResult:
        return self._issuance.issue(
            request,
            actor=actor,
            team=team,
            principal=credential.principal() if credential is not None else None,
            private_key=private_key,
        )


def listener_identity(directory: Path, password: bytes) -> SigningIdentity:
    """The HTTPS listener's certificate, key and issuing chain as ``serve`` keeps them
    (``server.crt``, ``server.key`` encrypted under the CA passphrase), read when a key
    package is signed."""
    try:
        certificates = load_certificates((directory / "server.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "server.key").read_bytes(), password)
    except (OSError, ValueError, CertfleetError) as exc:
        raise ConfigurationError(
            f"the listener's certificate and key cannot be read from {directory}: {type(exc).__name__}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigurationError("the listener's key can sign no CMS SignedData")
    return certificates[0], key, tuple(certificates[1:])


_RENEWABLE = (Source.ISSUED, Source.EST)


def _reserved(tags: Sequence[str]) -> bool:
    return any(t in RESERVED_TAGS or t.startswith(RESERVED_TAG_PREFIXES) for t in tags)


def _san_values(extensions: x509.Extensions) -> frozenset[tuple[str, str]]:
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset((type(name).__name__, str(name.value).lower()) for name in san)


def _require_same_identity(csr: x509.CertificateSigningRequest, current: x509.Certificate) -> None:
    """RFC 7030 section 4.2.2: "the Subject field and SubjectAltName extension MUST be
    identical to the corresponding fields in the certificate being renewed or rekeyed"."""
    if csr.subject != current.subject:
        raise Forbidden(
            f"re-enrolment must keep the Subject of the certificate being renewed: "
            f"asked for {csr.subject.rfc4514_string()!r}, "
            f"the certificate has {current.subject.rfc4514_string()!r}"
        )
    asked, held = _san_values(csr.extensions), _san_values(current.extensions)
    if asked != held:
        extra = sorted(v for _, v in asked - held)
        missing = sorted(v for _, v in held - asked)
        raise Forbidden(
            "re-enrolment must keep the subjectAltName of the certificate being renewed"
            + (f"; not in the certificate: {', '.join(extra)}" if extra else "")
            + (f"; missing from the CSR: {', '.join(missing)}" if missing else "")
        )
