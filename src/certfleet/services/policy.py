"""The policy as stored and enforced: versions applied and audited, the gate every issuance
path passes through, and compliance over the inventory (a report, or a dry run of a new
policy before it is applied)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.audit import AuditLog
from certfleet.ca import PROFILES, Authority, ValidatedRequest
from certfleet.clock import Clock, iso
from certfleet.errors import NotFound
from certfleet.inventory import MAX_PAGE_SIZE, CertificateQuery, CertificateRecord, Status
from certfleet.lifecycle.campaigns import key_label
from certfleet.lifecycle.notifications.events import Event, EventKind, emit
from certfleet.policy import (
    Candidate,
    Context,
    Policy,
    PolicyParseError,
    PolicyRepository,
    PolicyVersion,
    RuleViolation,
    Violation,
    parse_policy,
)
from certfleet.policy.presets import layer_presets
from certfleet.services._policy_candidates import record_candidate, request_candidate
from certfleet.services._ports import UnitOfWorkFactory

__all__ = [
    "ApplyOutcome",
    "IssuanceGate",
    "PolicyRepository",
    "PolicyService",
    "PolicyVersion",
    "Verdict",
    "record_candidate",
    "request_candidate",
]


class IssuanceGate(Protocol):
    """What the issuance service asks before a serial is reserved: raise to refuse."""

    def check_issuance(
        self, request: ValidatedRequest, authority: Authority, *, team: str | None, actor: str
    ) -> int | None:
        """Raise to refuse; else the policy version the request was judged by (None: none
        applied). It may answer from a cache: the serial's transaction compares the version
        with the one in force and the request is judged again when they differ."""
        ...

    def observe_version(self, version: int | None) -> None:
        """The database says ``version`` is in force: forget a cached policy of another."""
        ...


@dataclass(frozen=True)
class ApplyOutcome:
    """What applying did (or, with ``dry_run``, would do): ``version`` is the stored one, or
    the one in force when the document is unchanged."""

    version: PolicyVersion
    changed: bool
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "changed": self.changed, "dry_run": self.dry_run}


@dataclass(frozen=True)
class Verdict:
    record: CertificateRecord
    violations: tuple[Violation, ...]

    def rows(self, now: dt.datetime) -> Iterator[dict[str, Any]]:
        """One flat row per violation, the form of the report's JSON and CSV."""
        base = {
            "serial": self.record.serial,
            "fingerprint_sha256": self.record.fingerprint_sha256,
            "subject": self.record.subject,
            "sans": list(self.record.sans),
            "team": self.record.team,
            "profile": self.record.profile,
            "issuer": self.record.issuer,
            "key_type": key_label(self.record),
            "not_after": iso(self.record.not_after),
            "status": self.record.effective_status(now).value,
        }
        for violation in self.violations:
            yield {**base, **violation.to_dict()}


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class PolicyService:
    """Applies, shows and enforces the policy. The parsed policy in force is cached by
    version. Issuance judges a request by the cached policy without a database read; the
    transaction that reserves its serial reads the version in force (once per batch) and
    sends the request back to be judged again if a policy was applied meanwhile, by this or
    another process (the CLI beside ``serve``): so a new policy is enforced from the next
    request on, and an unchanged one costs nothing."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[int | None, Policy] = (None, Policy())
        self._fresh = False  # is _cached known to be the version in force?

    def now(self) -> dt.datetime:
        return self._clock.now()

    def parse(self, document: str | bytes, *, source: str) -> Policy:
        """Parse and check that every profile a rule names exists."""
        policy = parse_policy(document, source=source)
        for rule in policy.rules:
            unknown = [p for p in rule.profiles if p not in PROFILES]
            if unknown:
                expected = ", ".join(PROFILES)
                message = f"rule {rule.name!r}: unknown profile {unknown[0]!r} (expected one of {expected})"
                raise PolicyParseError(source, None, message)
        return policy

    def apply(self, document: str | bytes, *, source: str, actor: str, dry_run: bool = False) -> ApplyOutcome:
        """Store ``document`` as the next version, unless it equals the one in force.
        ``dry_run`` parses and checks it and answers what applying would do, storing nothing."""
        text = document.decode("utf-8", errors="replace") if isinstance(document, bytes) else document
        policy = self.parse(document, source=source)
        digest = _digest(text)
        with self._uow(read_only=dry_run) as uow:
            latest = uow.policies.latest_version()
            current = uow.policies.get(latest) if latest is not None else None
            if current is not None and current.sha256 == digest:
                return ApplyOutcome(current, changed=False, dry_run=dry_run)
            version = PolicyVersion(
                (latest or 0) + 1, self._clock.now(), actor, digest, len(policy.rules), text
            )
            if dry_run:
                return ApplyOutcome(version, changed=True, dry_run=True)
            uow.policies.add(version)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "policy.applied",
                f"v{version.version}",
                {
                    "version": version.version,
                    "sha256": digest,
                    "previous_version": latest,
                    "rules": [r.name for r in policy.rules],
                    "source": source,
                },
            )
        with self._lock:
            self._cached = (version.version, policy)
            self._fresh = True
        return ApplyOutcome(version, changed=True)

    def apply_presets(
        self,
        presets: Sequence[str],
        document: str | bytes | None = None,
        *,
        source: str,
        actor: str,
        dry_run: bool = False,
    ) -> ApplyOutcome:
        """Layer the shipped ``presets`` onto ``document``, or onto the policy in force (its
        own rules kept), and apply the result as the next version."""
        if document is None:
            current = self.current()
            base = current.document if current is not None else None
        else:
            base = document.decode("utf-8", errors="replace") if isinstance(document, bytes) else document
        return self.apply(layer_presets(base, presets), source=source, actor=actor, dry_run=dry_run)

    def current(self) -> PolicyVersion | None:
        with self._uow(read_only=True) as uow:
            latest = uow.policies.latest_version()
            return uow.policies.get(latest) if latest is not None else None

    def get(self, version: int) -> PolicyVersion:
        with self._uow(read_only=True) as uow:
            found = uow.policies.get(version)
        if found is None:
            raise NotFound(f"no policy version {version}")
        return found

    def show(self, version: int | None = None) -> PolicyVersion:
        """Version ``version``, or the one in force; NotFound before any apply."""
        if version is not None:
            return self.get(version)
        current = self.current()
        if current is None:
            raise NotFound("no policy has been applied yet: every request is allowed")
        return current

    def history(self, limit: int = 100) -> Sequence[PolicyVersion]:
        with self._uow(read_only=True) as uow:
            return uow.policies.history(limit)

    def active(self) -> tuple[int | None, Policy]:
        """The version in force and its parsed rules (an empty policy before any apply)."""
        with self._uow(read_only=True) as uow:
            latest = uow.policies.latest_version()
            with self._lock:
                if self._cached[0] == latest:
                    self._fresh = True
                    return self._cached
            stored = uow.policies.get(latest) if latest is not None else None
        policy = parse_policy(stored.document, source=f"policy v{latest}") if stored else Policy()
        with self._lock:
            self._cached = (latest, policy)
            self._fresh = True
        return latest, policy

    def observe_version(self, version: int | None) -> None:
        with self._lock:
            if self._cached[0] != version:
                self._fresh = False

    def _enforced(self) -> tuple[int | None, Policy]:
        with self._lock:
            if self._fresh:
                return self._cached
        return self.active()

    def check_issuance(
        self, request: ValidatedRequest, authority: Authority, *, team: str | None, actor: str
    ) -> int | None:
        """The gate: raise :class:`RuleViolation` naming the first enforced rule broken.
        Every violation, enforced or report-only, becomes a ``policy-violation`` event.
        Returns the version judged by (see :class:`IssuanceGate`)."""
        version, policy = self._enforced()
        if not policy.rules:
            return version
        # Issued now: the date that selects the CA/B Forum's validity rule in force.
        candidate = dataclasses.replace(request_candidate(request, authority, team), not_before=self.now())
        try:
            found = policy.check_issuance(candidate)
        except RuleViolation as refusal:
            self._report(candidate, refusal.violations, version, actor, refused=True)
            raise
        if found:
            self._report(candidate, found, version, actor, refused=False)
        return version

    def _report(
        self,
        candidate: Candidate,
        violations: tuple[Violation, ...],
        version: int | None,
        actor: str,
        *,
        refused: bool,
    ) -> None:
        now = self._clock.now()
        shape = "|".join([*candidate.names, candidate.key_type, str(candidate.profile), str(candidate.team)])
        first = violations[0]
        # One notice per rule, request shape and day: a client retrying a refused request in
        # a loop must not flood a team's channels.
        dedup = hashlib.sha256(f"{first.rule}|{shape}|{now.date()}|{refused}".encode()).hexdigest()
        event = Event(
            kind=EventKind.POLICY_VIOLATION,
            subject=first.rule,
            occurred_at=now,
            team=candidate.team,
            details={
                "context": Context.ISSUANCE.value,
                "refused": refused,
                "policy_version": version,
                "actor": actor,
                "request": {
                    "names": list(candidate.names),
                    "key_type": candidate.key_type,
                    "profile": candidate.profile,
                    "validity_days": candidate.validity / dt.timedelta(days=1),
                },
                "rule": first.to_dict(),
                "violations": [v.to_dict() for v in violations],
            },
            dedup_key=f"policy-violation:{dedup}",
        )
        with self._uow() as uow:
            emit(uow, event)

    def evaluate_inventory(self, policy: Policy | None = None) -> Iterator[Verdict]:
        """Judge every active certificate, page by page (keyset), so memory stays flat over
        a million rows. Yields a verdict per certificate, compliant ones included."""
        if policy is None:
            _, policy = self.active()
        with_ekus = policy.needs_ekus
        after_id: int | None = None
        while True:
            query = CertificateQuery(status=Status.ACTIVE, limit=MAX_PAGE_SIZE, after_id=after_id)
            with self._uow(read_only=True) as uow:
                page = uow.certificates.query(query, self._clock.now())
            for record in page:
                candidate = record_candidate(record, with_ekus=with_ekus)
                yield Verdict(record, policy.evaluate(candidate, Context.INVENTORY))
            if len(page) < MAX_PAGE_SIZE:
                return
            after_id = page[-1].id
