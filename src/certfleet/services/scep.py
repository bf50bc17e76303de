"""SCEP enrolment (RFC 8894) behind the protocol: challenge passwords, transactions, manual
approval and issuance through the one issuance service (source ``scep``, the challenge's
team, its name patterns as the principal's). The RA key and certificate live in
:mod:`certfleet.services._scep_ra`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.access import NamePattern, Principal, Scope, hash_secret
from certfleet.access.scep import (
    CHALLENGE_USED_UP,
    REPLAYED,
    EnrolmentRefused,
    Refusal,
    ScepChallenge,
    ScepClaim,
    ScepIssued,
    ScepStore,
    ScepTransaction,
    TransactionStatus,
)
from certfleet.audit import AuditLog
from certfleet.ca import CaCertificate, IssuanceRequest, IssuedCertificate, get_profile
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict, InvalidInput, NotFound
from certfleet.inventory import CertificateRecord, Status
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services.issuance import AnnexRefused, IssuanceService, LedgerAnnex
from certfleet.x509 import csr_public_key, names_from_csr, parse_names, serial_hex, signed_by, to_pem

__all__ = ["MintedChallenge", "ScepService", "renewal_transaction_id"]

CHALLENGE_PASSWORD = x509.ObjectIdentifier("1.2.840.113549.1.9.7")
DEFAULT_TTL = dt.timedelta(days=7)
DEFAULT_PROFILE = "tls-client"  # routers, phones and laptops mostly authenticate as clients
_KNOWN_CHALLENGES = 1024  # challenges a worker keeps (a fleet enrols through a few)


@dataclass(frozen=True)
class MintedChallenge:
    """``password`` is shown once: ``<id>-<secret>``, hex only, so it fits the
    PrintableString a CSR's challengePassword is usually encoded as."""

    challenge: ScepChallenge
    password: str


def _challenge_password(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        value = csr.attributes.get_attribute_for_oid(CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _requested_names(csr: x509.CertificateSigningRequest) -> tuple[str | None, tuple[str, ...]]:
    try:
        common_name, names = names_from_csr(csr)
    except (ValueError, CertfleetError) as exc:
        raise EnrolmentRefused(Refusal.NAMES, f"unreadable names in the request: {exc}") from None
    return common_name, tuple(names)


def renewal_transaction_id(transaction_id: str, signer: x509.Certificate) -> str:
    return f"{transaction_id}/renews/{serial_hex(signer.serial_number)}"


class ScepService:
    def __init__(
        self,
        store: ScepStore,
        uow: UnitOfWorkFactory,
        issuance: IssuanceService,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        crl: Callable[[str], bytes],
        clock: Clock,
    ) -> None:
        self._store = store
        self._uow = uow
        self._issuance = issuance
        self._hierarchy = hierarchy
        self._crl = crl
        self._clock = clock
        self._challenges: dict[str, ScepChallenge] = {}  # see _known_challenge

    # -- challenges ---------------------------------------------------------------------------

    def create_challenge(
        self,
        team: str,
        *,
        actor: str,
        profile: str = DEFAULT_PROFILE,
        names: Sequence[str] = (),
        uses: int = 1,
        ttl: dt.timedelta = DEFAULT_TTL,
        manual_approval: bool = False,
    ) -> MintedChallenge:
        if not team.strip():
            raise InvalidInput("a challenge needs a team")
        if get_profile(profile).internal:
            raise InvalidInput(f"unknown profile {profile!r}")
        patterns = tuple(NamePattern.parse(p).text for p in names)
        if uses < 1:
            raise InvalidInput("--uses must be at least 1")
        if ttl <= dt.timedelta(0):
            raise InvalidInput("--ttl must be positive")
        now = self._clock.now()
        challenge_id = secrets.token_hex(6)
        secret = secrets.token_hex(16)
        challenge = ScepChallenge(
            challenge_id, hash_secret(secret), team, profile, patterns, uses, manual_approval, now + ttl, now
        )
        self._store.add_challenge(challenge)
        self._audit(actor, "scep.challenge.created", challenge_id, {**challenge.to_dict(), "id": None})
        return MintedChallenge(challenge, f"{challenge_id}-{secret}")

    def challenges(self) -> Sequence[ScepChallenge]:
        return self._store.challenges()

    def _challenge_for(
        self, challenge_id: str, secret: str, challenge: ScepChallenge | None
    ) -> ScepChallenge:
        """``challenge``: the one stored under ``challenge_id`` (None: none)."""
        # Compared in constant time; an unknown id still costs a comparison.
        known_hash = challenge.secret_hash if challenge else hash_secret(secrets.token_hex(16))
        if not hmac.compare_digest(known_hash, hash_secret(secret)) or challenge is None:
            raise EnrolmentRefused(Refusal.CHALLENGE, "unknown challenge password")
        if challenge.expires_at <= self._clock.now() or challenge.uses_left < 1:
            raise EnrolmentRefused(Refusal.CHALLENGE, f"challenge {challenge.id} expired or used up")
        return challenge

    # -- enrolment ----------------------------------------------------------------------------

    def enrol(
        self,
        csr: x509.CertificateSigningRequest,
        transaction_id: str,
        signer: x509.Certificate,
        *,
        renewal: bool,
    ) -> ScepTransaction:
        """PKCSReq (challenge) or RenewalReq (signed by the current certificate). A
        transaction ID already on record returns that record: never a second certificate."""
        issued = signer.issuer != signer.subject  # not the self-signed certificate of a PKCSReq
        if not renewal and issued and any(signed_by(signer, ca.certificate) for ca in self._hierarchy()):
            # A PKCSReq signed by a certificate this CA issued is a renewal as SCEP drafts
            # before RFC 8894 made it, and as certmonger still sends it (resubmit, rekey).
            renewal = True
        if renewal:
            # Clients derive the transactionID from the public key (RFC 8894 section
            # 3.2.1.1), so renewing with the same key repeats the enrolment's ID: a renewal
            # is one transaction per (ID, certificate renewed).
            transaction_id = renewal_transaction_id(transaction_id, signer)
            existing = self._store.transaction(transaction_id)
            return existing if existing is not None else self._renew(csr, transaction_id, signer)
        try:
            return self._enrol_new(csr, transaction_id)
        except EnrolmentRefused:
            # A transaction ID on record answers with its first result whatever refuses a new
            # one now (the one-time challenge it spent, a policy changed since). Looked up only
            # here: an ID replayed after issuance is found by the claim, with the serial.
            existing = self._store.transaction(transaction_id)
            if existing is None:
                raise
            return existing

    def _enrol_new(self, csr: x509.CertificateSigningRequest, transaction_id: str) -> ScepTransaction:
        challenge_id, _, secret = (_challenge_password(csr) or "").strip().partition("-")
        stored = self._known_challenge(challenge_id) if challenge_id and secret else None
        challenge = self._challenge_for(challenge_id, secret, stored)
        requested_names = _requested_names(csr)
        common_name, names = requested_names
        patterns = tuple(NamePattern.parse(p) for p in challenge.allow_names)
        requested = parse_names([*names, *([common_name] if common_name else [])])
        if patterns:
            for name in requested:
                if not any(p.matches(name) for p in patterns):
                    raise EnrolmentRefused(
                        Refusal.NAMES, f"challenge {challenge.id} does not allow {name.value!r}"
                    )
        now = self._clock.now()
        status = TransactionStatus.PENDING if challenge.manual_approval else TransactionStatus.ISSUING
        transaction = ScepTransaction(
            transaction_id, status, challenge.team, challenge.profile, challenge.id, None,
            csr.public_bytes(serialization.Encoding.DER), None, None, now, now,
        )  # fmt: skip
        if not challenge.manual_approval:
            # The row and the use are written with the serial, in issuance's transaction.
            claim = ScepClaim(transaction, challenge.id)
            return self._issue(transaction, csr, challenge, claim=claim, requested_names=requested_names)
        raced = self._store.begin_transaction(transaction, spend_use_of=challenge.id)
        if raced is False:
            raise EnrolmentRefused(Refusal.CHALLENGE, f"challenge {challenge.id} expired or used up")
        if raced is not None:
            return raced
        self._audit(f"scep:{challenge.id}", "scep.pending", transaction_id, {"team": challenge.team})
        return transaction

    def _known_challenge(self, challenge_id: str) -> ScepChallenge | None:
        """The challenge as this process last read it. What the service checks of it (secret
        hash, team, profile, names, expiry) never changes, so a worker keeps the ones with
        uses left; their ``uses_left`` is then only a hint: the claim's guarded UPDATE
        spends the use in issuance's transaction, or refuses (CHALLENGE_USED_UP) when
        another worker spent the last one."""
        known = self._challenges.get(challenge_id)
        if known is not None:
            return known
        challenge = self._store.challenge(challenge_id)
        if challenge is not None and challenge.uses_left > 0:
            if len(self._challenges) >= _KNOWN_CHALLENGES:
                self._challenges.clear()
            self._challenges[challenge_id] = challenge
        return challenge

    def _renew(
        self, csr: x509.CertificateSigningRequest, transaction_id: str, signer: x509.Certificate
    ) -> ScepTransaction:
        record = self._current_record(signer)
        common_name, names = _requested_names(csr)
        old_names = {n.value for n in parse_names(record.sans)}
        new_names = {n.value for n in parse_names(names)} or (
            {n.value for n in parse_names([common_name])} if common_name else set()
        )
        if (common_name or None) != (record.common_name or None) or new_names != old_names:
            raise EnrolmentRefused(
                Refusal.NAMES, "a renewal asks for exactly the names of the certificate it renews"
            )
        now = self._clock.now()
        transaction = ScepTransaction(
            transaction_id, TransactionStatus.ISSUING, record.team, record.profile or DEFAULT_PROFILE, None,
            record.serial, csr.public_bytes(serialization.Encoding.DER), None, None, now, now,
        )  # fmt: skip
        return self._issue(transaction, csr, None, claim=ScepClaim(transaction, None))

    def _current_record(self, signer: x509.Certificate) -> CertificateRecord:
        """The inventory record of the certificate a RenewalReq is signed with: one this CA
        issued, not revoked and not expired."""
        if not any(signed_by(signer, ca.certificate) for ca in self._hierarchy()):
            raise EnrolmentRefused(
                Refusal.UNKNOWN_CERTIFICATE, "the renewal is not signed by a certificate of this CA"
            )
        with self._uow(read_only=True) as uow:
            records = uow.certificates.get_by_serial(serial_hex(signer.serial_number))
        now = self._clock.now()
        signer_der = signer.public_bytes(serialization.Encoding.DER)
        for record in records:
            if record.der == signer_der:
                if record.effective_status(now) is not Status.ACTIVE:
                    raise EnrolmentRefused(
                        Refusal.UNKNOWN_CERTIFICATE,
                        f"certificate {record.serial} is {record.effective_status(now)}",
                    )
                return record
        raise EnrolmentRefused(Refusal.UNKNOWN_CERTIFICATE, "the signing certificate is not in the inventory")

    def _issue(
        self,
        transaction: ScepTransaction,
        csr: x509.CertificateSigningRequest,
        challenge: ScepChallenge | None,
        *,
        claim: ScepClaim | None,
        requested_names: tuple[str | None, tuple[str, ...]] | None = None,
    ) -> ScepTransaction:
        """Issue through the one issuance service. With ``claim`` (a new transaction) its row
        and challenge use are written with the serial; without (an approved one), the row
        exists. Either way the row's result is written with the certificate.
        ``requested_names``: the CSR's, when the caller has read them already."""
        common_name, names = requested_names or _requested_names(csr)
        principal = None
        if challenge is not None and challenge.allow_names:
            patterns = tuple(NamePattern.parse(p) for p in challenge.allow_names)
            principal = Principal(f"scep:{challenge.id}", challenge.team, Scope.ISSUE, patterns)
        actor = f"scep:{challenge.id}" if challenge else f"scep:renewal:{transaction.renews_serial}"
        issued: list[ScepIssued] = []

        def record(certificate: IssuedCertificate) -> ScepIssued:
            issued.append(
                ScepIssued(
                    transaction.transaction_id,
                    transaction.status,
                    serial_hex(certificate.certificate.serial_number),
                    to_pem(certificate.fullchain),
                    self._clock.now(),
                )
            )
            return issued[-1]

        try:
            request = IssuanceRequest(transaction.profile, csr_public_key(csr), names, common_name)
            self._issuance.issue(
                request,
                actor=actor,
                team=transaction.team,
                principal=principal,
                annex=LedgerAnnex(claim, record),
            )
        except AnnexRefused as refused:
            stored = self._store.transaction(transaction.transaction_id)
            if refused.reason == REPLAYED and stored is not None:
                # The same transactionID won the race: its result (ISSUING answers PENDING).
                return stored
            if refused.reason == CHALLENGE_USED_UP and challenge is not None:
                raise EnrolmentRefused(
                    Refusal.CHALLENGE, f"challenge {challenge.id} expired or used up"
                ) from None
            raise EnrolmentRefused(Refusal.POLICY, refused.detail) from None
        except CertfleetError as exc:
            if claim is None:  # an approved transaction: its row was moved to ISSUING for us
                self._store.forget(transaction.transaction_id)
            elif issued:
                # Signed but not recorded (the record's write failed): the row and the use
                # claimed with the serial are undone. Refused before the serial: nothing of
                # the transaction was written.
                self._store.abandon(transaction.transaction_id, give_back=challenge is not None)
            raise EnrolmentRefused(Refusal.POLICY, exc.detail) from None
        done = issued[-1]
        # What was just written: no second read of the row on every enrolment.
        return dataclasses.replace(
            transaction,
            status=TransactionStatus.ISSUED,
            serial=done.serial,
            chain_pem=done.chain_pem,
            updated_at=done.at,
        )

    # -- polling, approval, lookups -----------------------------------------------------------

    def poll(self, transaction_id: str, signer: x509.Certificate) -> ScepTransaction | None:
        """CertPoll: the enrolment of this ID, or the renewal of the certificate signing."""
        found = self._store.transaction(transaction_id)
        return found or self._store.transaction(renewal_transaction_id(transaction_id, signer))

    def pending(self) -> Sequence[ScepTransaction]:
        return self._store.transactions(TransactionStatus.PENDING)

    def approve(self, transaction_id: str, *, actor: str) -> ScepTransaction:
        """Issue a PENDING request: the client's next CertPoll receives the certificate."""
        transaction = self._pending(transaction_id)
        if not self._store.move(
            transaction_id, TransactionStatus.PENDING, TransactionStatus.ISSUING, self._clock.now()
        ):
            raise Conflict(f"transaction {transaction_id} is no longer pending")
        challenge = self._store.challenge(transaction.challenge_id) if transaction.challenge_id else None
        self._audit(actor, "scep.approved", transaction_id, {"team": transaction.team})
        csr = x509.load_der_x509_csr(transaction.csr_der)
        claimed = dataclasses.replace(transaction, status=TransactionStatus.ISSUING)
        return self._issue(claimed, csr, challenge, claim=None)

    def reject(self, transaction_id: str, *, actor: str) -> None:
        self._pending(transaction_id)
        if not self._store.move(
            transaction_id, TransactionStatus.PENDING, TransactionStatus.REJECTED, self._clock.now()
        ):
            raise Conflict(f"transaction {transaction_id} is no longer pending")
        self._audit(actor, "scep.rejected", transaction_id, {})

    def _pending(self, transaction_id: str) -> ScepTransaction:
        transaction = self._store.transaction(transaction_id)
        if transaction is None:
            raise NotFound(f"no SCEP transaction {transaction_id!r}")
        if transaction.status is not TransactionStatus.PENDING:
            raise Conflict(f"transaction {transaction_id} is {transaction.status.value}, not pending")
        return transaction

    def certificate(self, issuer: x509.Name, serial_number: int) -> x509.Certificate | None:
        with self._uow(read_only=True) as uow:
            records = uow.certificates.get_by_serial(serial_hex(serial_number))
        for record in records:
            cert = x509.load_der_x509_certificate(record.der)
            if cert.issuer == issuer:
                return cert
        return None

    def crl(self, issuer: x509.Name, serial_number: int) -> bytes | None:
        """GetCRL names a certificate; the answer is its issuer's complete CRL."""
        del serial_number  # one CRL per CA covers every certificate it issued
        for ca in self._hierarchy():
            if ca.certificate.subject == issuer:
                return self._crl(ca.id)
        return None

    def _audit(self, actor: str, action: str, subject: str, details: dict[str, object]) -> None:
        with self._uow() as uow:
            AuditLog(uow.audit, self._clock).record(
                actor, action, subject, {k: v for k, v in details.items() if v is not None}
            )
