"""Issuance: validate, record the serial, sign, record the certificate, audit.

Two write transactions per certificate at most, each shared by every request that arrives
meanwhile (group commit, see ``services._group_commit``): before signing, one reads the
policy version in force, checks the issuer and the blocked keys and reserves the serial;
after signing, one stores the certificate, its serial's state, its hash-chained audit entry
and its outbox event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.access import Principal
from certfleet.audit import AuditDraft, AuditLog, CertificateRef
from certfleet.ca import (
    SCEP_RA_PROFILE,
    Authority,
    IssuanceRequest,
    IssuedCertificate,
    UnknownProfile,
    ValidatedRequest,
    get_profile,
    new_serial_number,
)
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, ConfigurationError, Conflict, InvalidInput
from certfleet.faults import fault_point
from certfleet.inventory import CertificateRecord, Source
from certfleet.lifecycle.issuance import ClaimOutcome, ClaimResult, IssuanceLedger, IssuedEntry, SerialClaim
from certfleet.lifecycle.notifications.events import Event, EventKind
from certfleet.revocation import KeyBlocked, spki_sha256
from certfleet.services._group_commit import GroupCommitter
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services.policy import IssuanceGate
from certfleet.x509 import CertificateFacts, serial_hex

__all__ = [
    "RESERVED_TAGS",
    "AnnexRefused",
    "IssuanceResult",
    "IssuanceService",
    "LedgerAnnex",
    "check_caller_tags",
]

_SERIAL_ATTEMPTS = 3
_POLICY_RECHECKS = 3  # a policy applied between judging and reserving: judge again


class _IssuerRetired(Exception):  # an internal signal, never leaves this module
    """The cached issuing CA is no longer active in the database."""


# Tags only certfleet itself sets: they change who renews a certificate and which agent may
# report it (see lifecycle.jobs.external_reason and the agent service). A caller who could set
# them could, for instance, stop the server renewing a certificate, or let an agent claim it.
RESERVED_TAGS = ("certfleet-server", "certfleet-agent-identity", "certfleet-scep-ra")
RESERVED_TAG_PREFIXES = ("agent:",)


def check_caller_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """``tags`` as a caller (REST, CLI, import) may set them; a reserved one is refused.
    Compared case-insensitively and without surrounding blanks, so no look-alike passes."""
    for tag in tags:
        folded = tag.strip().casefold()
        if folded in RESERVED_TAGS or folded.startswith(RESERVED_TAG_PREFIXES):
            raise InvalidInput(
                f"tag {tag!r} is reserved: certfleet sets it on its own server and agent certificates"
            )
    return tuple(tags)


@dataclass(frozen=True)
class LedgerAnnex:
    """Rows an enrolment protocol writes inside issuance's own two transactions instead of
    transactions of its own (SCEP: its transaction row and the challenge's use with the
    serial, before signing; the row's result with the record, after). ``claim`` (None:
    nothing before signing) is written only if the serial is reserved; ``record`` builds
    what is written with the certificate. The ledger must know both (``SqlScepLedger``)."""

    claim: object | None
    record: Callable[[IssuedCertificate], object]


class AnnexRefused(Conflict):
    """The ledger could not write the claim's annex (``reason``, named by that ledger): no
    serial was reserved and nothing was written. Not a refusal of the request, so not
    audited as one: the protocol decides what it means (SCEP: a replay, a used-up challenge)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the enrolment could not be recorded: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class IssuanceResult:
    issued: IssuedCertificate
    record: CertificateRecord
    private_key: CertificateIssuerPrivateKeyTypes | None = None

    def private_key_pem(self) -> bytes | None:
        """The generated key, unencrypted: only for an explicit export to its requester."""
        if self.private_key is None:
            return None
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


class IssuanceService:
    """Issues certificates for every path (REST, CLI, ACME, agents, renewal).

    ``ledger`` holds the two batched writes; concurrent callers share its transactions
    (group commit), so throughput grows with concurrency instead of queueing on the write lock.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        authority: Callable[[], Authority],
        clock: Clock,
        *,
        ledger: IssuanceLedger,
        policy: IssuanceGate | None = None,
        server_authority: Callable[[], Authority] | None = None,
        refresh_authority: Callable[[], object] | None = None,
        source: Source = Source.ISSUED,
        authority_for: Callable[[str], Authority] | None = None,
        agent_identity_authority: Callable[[], Authority | None] | None = None,
    ) -> None:
        self._uow = uow
        self._source = source  # what its records are in the inventory (SPIFFE: ``spiffe``)
        self._authority = authority
        # A profile may choose its CA (a parallel post-quantum hierarchy, issue 17).
        self._authority_for = authority_for
        self._refresh_authority = refresh_authority
        self._clock = clock
        self._policy = policy
        self._server_authority = server_authority
        self._agent_identity_authority = agent_identity_authority
        self._claims: GroupCommitter[SerialClaim, ClaimResult] = GroupCommitter(
            ledger.claim_serials, isolate=ledger.caused_by_items
        )
        self._records: GroupCommitter[IssuedEntry, CertificateRecord] = GroupCommitter(
            ledger.record_issued, isolate=ledger.caused_by_items
        )

    @property
    def transactions(self) -> int:
        """Write transactions run so far (serial batches plus record batches): with
        concurrent requests, fewer than two per certificate."""
        return self._claims.batches + self._records.batches

    def _refuse(self, actor: str, request: IssuanceRequest, error: CertfleetError) -> None:
        with self._uow() as uow:
            AuditLog(uow.audit, self._clock).record(
                actor,
                "certificate.refused",
                # On the requester, never on a certificate: a refused request names what it
                # asked for only in details, so it cannot attach itself to someone's certificate.
                actor,
                {
                    "profile": request.profile,
                    "reason": error.detail,
                    "names": list(request.names),
                    "common_name": request.common_name,
                },
            )

    def issue(
        self,
        request: IssuanceRequest,
        *,
        actor: str,
        team: str | None = None,
        principal: Principal | None = None,
        tags: tuple[str, ...] = (),
        private_key: CertificateIssuerPrivateKeyTypes | None = None,
        annex: LedgerAnnex | None = None,
    ) -> IssuanceResult:
        """Issue a certificate. A refusal raises and records nothing but its audit entry.

        The serial is committed before signing (RFC 5280 and CA/B Forum practice): if the
        final write fails after the signature, the serial is still on record and can be
        revoked, so no signed certificate is ever unknown to the CA.
        """
        if get_profile(request.profile).internal:
            # certfleet's own certificates (the SCEP RA) are never issued on request.
            raise UnknownProfile(f"unknown profile {request.profile!r}")
        return self._issue_retrying(request, actor, team, principal, tags, private_key, annex)

    def issue_agent_identity(
        self, request: IssuanceRequest, *, actor: str, team: str | None, tags: tuple[str, ...]
    ) -> IssuanceResult:
        """An agent's own mTLS identity: from the agent-identity CA when there is one (under an
        ML-DSA default root, whose chain the agent's OpenSSL cannot present), else as ``issue``."""
        authority = self._agent_identity_authority() if self._agent_identity_authority else None
        if authority is None:
            return self.issue(request, actor=actor, team=team, tags=tags)
        return self._issue(authority, request, actor, team, None, tags, None)

    def issue_registration_authority(self, request: IssuanceRequest, *, actor: str) -> IssuanceResult:
        """The SCEP RA's certificate (profile ``scep-ra``), tagged ``certfleet-scep-ra``: the
        one path that may issue that internal profile."""
        if request.profile != SCEP_RA_PROFILE.name:
            raise InvalidInput(f"a registration authority is issued with profile {SCEP_RA_PROFILE.name}")
        return self._issue_retrying(request, actor, None, None, ("certfleet-scep-ra",), None)

    def _issue_retrying(
        self,
        request: IssuanceRequest,
        actor: str,
        team: str | None,
        principal: Principal | None,
        tags: tuple[str, ...],
        private_key: CertificateIssuerPrivateKeyTypes | None,
        annex: LedgerAnnex | None = None,
    ) -> IssuanceResult:
        try:
            return self._issue(self._pick(request), request, actor, team, principal, tags, private_key, annex)
        except _IssuerRetired:
            # Another process (``ca rotate``/``ca compromise`` from the CLI, another node)
            # retired the cached intermediate: never sign with it again, take the new one.
            if self._refresh_authority is None:
                raise ConfigurationError("the issuing CA was retired and cannot be refreshed") from None
            self._refresh_authority()
            return self._issue(self._pick(request), request, actor, team, principal, tags, private_key, annex)

    def _pick(self, request: IssuanceRequest) -> Authority:
        return self._authority() if self._authority_for is None else self._authority_for(request.profile)

    def issue_server_identity(self, request: IssuanceRequest, *, actor: str) -> IssuanceResult:
        """The HTTPS listener's own certificate, from the dedicated server-identity CA (the
        only path that signs with it), tagged ``certfleet-server``."""
        if self._server_authority is None:
            raise ConfigurationError("this issuance service has no server-identity CA")
        return self._issue(self._server_authority(), request, actor, None, None, ("certfleet-server",), None)

    def server_identity_issuer(self) -> x509.Certificate:
        """The server-identity CA certificate the next listener certificate would come from
        (created when due)."""
        if self._server_authority is None:
            raise ConfigurationError("this issuance service has no server-identity CA")
        return self._server_authority().issuer.certificate

    def _issue(
        self,
        authority: Authority,
        request: IssuanceRequest,
        actor: str,
        team: str | None,
        principal: Principal | None,
        tags: tuple[str, ...],
        private_key: CertificateIssuerPrivateKeyTypes | None,
        annex: LedgerAnnex | None = None,
    ) -> IssuanceResult:
        try:
            validated = authority.validate(request)
            if principal is not None:
                principal.authorize_names(validated.names)
            serial_number = self._reserve_serial(
                authority, validated, team, actor, None if annex is None else annex.claim
            )
        except CertfleetError as exc:
            if not isinstance(exc, _SerialsExhausted | AnnexRefused):
                self._refuse(actor, request, exc)
            raise
        fault_point("issuance.after_serial_reserved")
        issued = authority.sign(validated, serial_number)
        fault_point("issuance.after_signing")
        facts = CertificateFacts.of(issued.certificate)
        now = self._clock.now()
        record = CertificateRecord.from_facts(
            facts,
            source=self._source,
            seen_at=now,
            issuer_ca_id=issued.issuer_id,
            profile=issued.profile,
            team=team,
            tags=tags,
        )
        audit = AuditDraft(
            now,
            actor,
            "certificate.issued",
            CertificateRef(facts.serial, facts.issuer).subject,
            {
                "fingerprint_sha256": facts.fingerprint_sha256,
                "profile": issued.profile,
                "sans": list(facts.sans),
                "team": team,
                "issuer_ca_id": issued.issuer_id,
                "not_after": facts.not_after.isoformat(),
            },
        )

        def event(stored: CertificateRecord) -> Event:
            # A certificate issued this instant has no discovered locations yet.
            return Event(
                kind=EventKind.ISSUED,
                subject=stored.serial,
                occurred_at=now,
                team=stored.team,
                certificate=stored.to_dict(now),
                details={"actor": actor},
            )

        fault_point("issuance.before_final_write")
        entry = IssuedEntry(record, audit, event, None if annex is None else annex.record(issued))
        stored = self._records.submit(entry)
        return IssuanceResult(issued, stored, private_key)

    def _reserve_serial(
        self,
        authority: Authority,
        validated: ValidatedRequest,
        team: str | None,
        actor: str,
        annex: object | None = None,
    ) -> int:
        """Judge the request, then reserve a fresh serial in the batch's transaction, which
        also refuses a blocked key (revoked for keyCompromise: never certified again) and
        notices an issuer retired or a policy applied by another process."""
        spki = spki_sha256(validated.public_key)
        collisions = rechecks = 0
        version = self._judge(validated, authority, team, actor)
        while True:
            serial_number = new_serial_number()
            claim = SerialClaim(
                serial=serial_hex(serial_number),
                issuer_ca_id=authority.issuer.id,
                # Checked in the serial's own transaction (no extra round trip): a cached
                # issuer that another process retired since must not sign once more.
                issuer_must_be_active=authority.issuer.role == "intermediate",
                spki_sha256=spki,
                at=self._clock.now(),
                policy_checked=self._policy is not None,
                policy_version=version,
                annex=annex,
            )
            result = self._claims.submit(claim)
            if result.outcome is ClaimOutcome.RESERVED:
                return serial_number
            if result.outcome is ClaimOutcome.ANNEX_REFUSED:
                raise AnnexRefused(result.refusal or "refused")
            if result.outcome is ClaimOutcome.KEY_BLOCKED:
                raise KeyBlocked("this public key was revoked for keyCompromise and cannot be certified")
            if result.outcome is ClaimOutcome.ISSUER_RETIRED:
                raise _IssuerRetired(authority.issuer.id)
            if result.outcome is ClaimOutcome.POLICY_CHANGED and rechecks < _POLICY_RECHECKS:
                rechecks += 1
                assert self._policy is not None
                self._policy.observe_version(result.policy_version)
                version = self._judge(validated, authority, team, actor)
                continue
            if result.outcome is ClaimOutcome.TAKEN and collisions + 1 < _SERIAL_ATTEMPTS:
                collisions += 1  # a 128-bit collision: astronomically unlikely, but never reuse
                continue
            if result.outcome is ClaimOutcome.POLICY_CHANGED:
                raise Conflict("the policy changed repeatedly while this request was judged: try again")
            raise _SerialsExhausted("could not reserve a unique serial number")

    def _judge(
        self, validated: ValidatedRequest, authority: Authority, team: str | None, actor: str
    ) -> int | None:
        if self._policy is None:
            return None
        # One policy engine on every path (CLI, REST, ACME); judged by the cached policy.
        return self._policy.check_issuance(validated, authority, team=team, actor=actor)


class _SerialsExhausted(Conflict):
    """Every serial drawn was taken: not the requester's fault, so not audited as a refusal."""
