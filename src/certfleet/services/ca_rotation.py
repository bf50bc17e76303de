"""CA rotation and the compromise playbook.

``rotate``: a new issuing intermediate under the root takes over issuance; the previous one
is retired from issuing but keeps publishing its CRL and answering OCSP for everything it
issued, until that has expired (the overlap). Its certificates stay valid; a campaign moves
them when wanted (``certfleet rotate --select ca=<old> --to-ca <new>``).

``compromise``: the same new intermediate, then the compromised one is revoked with reason
cACompromise (so it appears on the root's CRL, RFC 5280 section 5.3.1), then a campaign
reissues every certificate it issued from the new one and revokes the old ones. Certificates
held by agents and ACME clients are renewed by them ("renew now": an ARI window in the past);
at the campaign's deadline (24 hours by default: the CA/Browser Forum's Baseline Requirements
give a CA 24 hours to revoke after a key compromise) whatever is still not replaced is revoked
anyway. Each step checks what is already done, so running the playbook again after a crash
finishes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certfleet.ca import INTERMEDIATE_LIFETIME, LISTENER_ROOT_ROLE, PROFILES, CaCertificate
from certfleet.clock import Clock, iso
from certfleet.errors import Conflict, InvalidInput, NotFound
from certfleet.lifecycle.ca_health import CaWarning, expiry_warnings
from certfleet.lifecycle.campaigns import Campaign, CampaignRequest
from certfleet.lifecycle.selection import Selection
from certfleet.services._hierarchies import default_root, issuer_under
from certfleet.services.authorities import AuthorityService
from certfleet.services.rotation import RotationService
from certfleet.x509 import KeyType, serial_hex

__all__ = ["COMPROMISE_DEADLINE", "CaRotation", "CaRotationService"]

_LONGEST_LEAF = max(p.max_validity for p in PROFILES.values())
COMPROMISE_DEADLINE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class CaRotation:
    new_ca: CaCertificate
    retired: list[str]
    warnings: list[CaWarning] = field(default_factory=list)
    revoked_ca: str | None = None
    campaign: Campaign | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "new_ca": {
                "id": self.new_ca.id,
                "name": self.new_ca.name,
                "not_after": iso(self.new_ca.not_after),
            },
            "retired": self.retired,
            "revoked_ca": self.revoked_ca,
            "campaign": self.campaign.id if self.campaign else None,
            # what agents and ACME clients have not replaced by then is revoked anyway
            "campaign_deadline_at": iso(self.campaign.deadline_at) if self.campaign else None,
            "warnings": [
                {"ca": w.ca_id, "severity": w.severity, "message": w.message} for w in self.warnings
            ],
        }


class CaRotationService:
    def __init__(
        self,
        authorities: AuthorityService,
        rotation: RotationService,
        revoke_ca: Callable[[str, str, str], object],
        clock: Clock,
    ) -> None:
        self._authorities = authorities
        self._rotation = rotation
        self._revoke_ca = revoke_ca  # (serial, reason, actor)
        self._clock = clock

    def warnings(self) -> list[CaWarning]:
        """Roots that expire before a new intermediate's lifetime, and CAs in use that expire
        within the longest leaf lifetime."""
        now = self._clock.now()
        found: list[CaWarning] = []
        for ca in self._authorities.hierarchy():
            if ca.active:
                found += expiry_warnings(
                    ca.id,
                    ca.role,
                    ca.not_after,
                    now,
                    intermediate_lifetime=INTERMEDIATE_LIFETIME,
                    leaf_lifetime=_LONGEST_LEAF,
                )
        return found

    def rotate(self, key_type: KeyType | None, *, actor: str) -> CaRotation:
        new, retired = self._authorities.add_intermediate(key_type, actor=actor)
        return CaRotation(new, retired, self.warnings())

    def _current(self) -> CaCertificate | None:
        """The default hierarchy's issuing CA (a parallel one, issue 17, is not rotated here)."""
        cas = self._authorities.hierarchy()
        root = default_root(cas)
        return issuer_under(cas, root) if root is not None else None

    def compromise(
        self,
        ca_id: str,
        *,
        actor: str,
        revoke_old_after: dt.timedelta = dt.timedelta(0),
        deadline: dt.timedelta = COMPROMISE_DEADLINE,
    ) -> CaRotation:
        """Run (or finish) the playbook for a compromised intermediate; the campaign it
        creates is returned for the caller to run (the CLI shows its progress). A campaign
        an earlier run created keeps its deadline."""
        if deadline <= dt.timedelta(0):
            raise InvalidInput("the deadline must be in the future (e.g. 24h)")
        by_id = {ca.id: ca for ca in self._authorities.hierarchy()}
        ca = by_id.get(ca_id)
        if ca is None:
            raise NotFound(f"no CA with id {ca_id!r}")
        if ca.role in ("root", LISTENER_ROOT_ROLE):
            raise InvalidInput(
                f"{ca_id} is the root: a root cannot be revoked; create a new root and distribute it "
                "to every trust store"
            )
        root = default_root(list(by_id.values()))
        if ca.role == "intermediate" and root is not None and ca.parent_id != root.id:
            # Its replacement would have to come from its own (e.g. post-quantum) hierarchy;
            # add_intermediate rotates the default one only.
            raise InvalidInput(
                f"{ca_id} belongs to a parallel hierarchy: the compromise playbook covers the "
                "default hierarchy's issuing CAs only"
            )
        retired: list[str] = []
        current = self._current()
        if ca.active or current is None:
            current, retired = self._authorities.add_intermediate(None, actor=actor)
        revoked = None
        try:
            self._revoke_ca(serial_hex(ca.certificate.serial_number), "caCompromise", actor)
            revoked = ca.id
        except Conflict:
            revoked = ca.id  # already revoked by an earlier run
        selection = Selection.parse(f"ca={ca.id}")
        campaign = next(
            (
                c
                for c in self._rotation.list(1000)
                if c.campaign.kind == "compromise" and c.campaign.selection == str(selection)
            ),
            None,
        )
        created = campaign.campaign if campaign is not None else None
        if created is None:
            request = CampaignRequest(
                selection,
                to_ca=current.id,
                revoke_old_after=revoke_old_after,
                kind="compromise",
                revoke_reason="caCompromise",
                deadline=deadline,
            )
            try:
                created = self._rotation.create(request, actor=actor)
            except NotFound:
                created = None  # it issued nothing still active
        return CaRotation(current, retired, self.warnings(), revoked, created)
