"""Registration entries: create (within the policy's SPIFFE ID prefixes for the team), list,
show, delete. An entry and its audit entry commit in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from certfleet.access import Principal, Scope
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.errors import NotFound
from certfleet.policy import Candidate, Policy, RuleViolation
from certfleet.services.spiffe_ports import SpiffeUnitOfWorkFactory
from certfleet.spiffe import (
    DEFAULT_SVID_TTL,
    EntryRecord,
    InvalidEntry,
    RegistrationEntry,
    SpiffeId,
    TrustDomain,
    new_entry_id,
    parse_selectors,
)

__all__ = ["SpiffeRegistry"]


class SpiffeRegistry:
    def __init__(self, uow: SpiffeUnitOfWorkFactory, policy: Callable[[], Policy], clock: Clock) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock

    def trust_domain(self) -> TrustDomain:
        with self._uow(read_only=True) as uow:
            config = uow.spiffe.config()
        if config is None:
            raise NotFound("SPIFFE is not initialised: run 'certfleet spiffe init --trust-domain NAME'")
        return config.trust_domain

    def create(
        self,
        spiffe_id: str,
        parent_id: str,
        selectors: Sequence[str],
        *,
        actor: str,
        ttl: dt.timedelta | None = None,
        dns_names: Sequence[str] = (),
        team: str | None = None,
        principal: Principal | None = None,
    ) -> RegistrationEntry:
        """Register an entry. A principal that is not an admin needs the issue scope and
        registers for its own team. The policy's ``spiffe_id_prefixes`` rules for that team
        decide which IDs it may register; a refusal is audited and changes nothing else."""
        trust_domain = self.trust_domain()
        if principal is not None:
            principal.require(Scope.ISSUE)
            if not principal.is_admin:
                if team is not None and team != principal.team:
                    raise InvalidEntry(
                        f"a {principal.team!r} token cannot register entries for team {team!r}"
                    )
                team = principal.team
        entry = RegistrationEntry(
            id=new_entry_id(),
            spiffe_id=SpiffeId.parse(spiffe_id),
            parent_id=SpiffeId.parse(parent_id),
            selectors=parse_selectors(selectors),
            ttl=ttl if ttl is not None else DEFAULT_SVID_TTL,
            dns_names=tuple(dns_names),
            team=team,
            created_at=self._clock.now(),
            created_by=actor,
        )
        if not entry.spiffe_id.is_member_of(trust_domain):
            raise InvalidEntry(f"{entry.spiffe_id} is not in this server's trust domain {trust_domain}")
        self._judge(entry, actor)
        with self._uow() as uow:
            uow.spiffe.add_entry(entry)
            AuditLog(uow.audit, self._clock).record(actor, "spiffe.entry.created", entry.id, _details(entry))
        return entry

    def _judge(self, entry: RegistrationEntry, actor: str) -> None:
        candidate = Candidate(
            names=entry.dns_names,
            key_type="",
            validity=entry.ttl,
            profile="x509-svid",
            team=entry.team,
            spiffe_ids=(str(entry.spiffe_id),),
            label=str(entry.spiffe_id),
        )
        try:
            self._policy().check_registration(candidate)
        except RuleViolation as refusal:
            with self._uow() as uow:
                details = {**_details(entry), "reason": refusal.detail, "rule": refusal.rule}
                AuditLog(uow.audit, self._clock).record(actor, "spiffe.entry.refused", actor, details)
            raise

    def records(
        self, principal: Principal | None = None, *, parent_id: str | None = None
    ) -> list[EntryRecord]:
        with self._uow(read_only=True) as uow:
            found = uow.spiffe.entry_records(self._clock.now())
        return [
            r
            for r in found
            if (principal is None or principal.can_see_team(r.entry.team))
            and (parent_id is None or str(r.entry.parent_id) == parent_id)
        ]

    def record(self, entry_id: str, principal: Principal | None = None) -> EntryRecord:
        with self._uow(read_only=True) as uow:
            found = uow.spiffe.entry_records(self._clock.now(), entry_id=entry_id)
        if not found or (principal is not None and not principal.can_see_team(found[0].entry.team)):
            raise NotFound(f"no SPIFFE entry {entry_id}")
        return found[0]

    def delete(self, entry_id: str, *, actor: str, principal: Principal | None = None) -> RegistrationEntry:
        """Delete an entry: its agent stops handing out its identity at the next refresh. Its
        SVIDs stay valid until they expire unless revoked (``revoke_svids``)."""
        if principal is not None:
            principal.require(Scope.ISSUE)
        entry = self.record(entry_id, principal).entry
        with self._uow() as uow:
            if not uow.spiffe.delete_entry(entry_id):
                raise NotFound(f"no SPIFFE entry {entry_id}")
            AuditLog(uow.audit, self._clock).record(actor, "spiffe.entry.deleted", entry_id, _details(entry))
        return entry

    def live_serials(self, entry_id: str) -> list[str]:
        with self._uow(read_only=True) as uow:
            return uow.spiffe.live_serials(entry_id, self._clock.now())


def _details(entry: RegistrationEntry) -> dict[str, object]:
    return {
        "spiffe_id": str(entry.spiffe_id),
        "parent_id": str(entry.parent_id),
        "selectors": [str(s) for s in entry.selectors],
        "ttl_seconds": int(entry.ttl.total_seconds()),
        "dns_names": list(entry.dns_names),
        "team": entry.team,
    }
