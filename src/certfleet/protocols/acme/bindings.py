"""Adapters from the ACME server's narrow interfaces to certfleet's application services.

The composition root builds these; they are the only part of the ACME package that knows the
services, so the protocol logic depends on :class:`Issuer` and :class:`Revoker` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from certfleet.access import NamePattern, Principal, Scope
from certfleet.ca import IssuanceRequest
from certfleet.protocols.acme._ports import IssuedChain, IssueOrder, OrderIssued
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.services import IssuanceService
from certfleet.services.issuance import AnnexRefused, LedgerAnnex
from certfleet.x509 import csr_public_key, to_pem

__all__ = ["ServiceIssuer", "ServiceRevoker"]


class ServiceIssuer:
    """Issues through :class:`IssuanceService`: the same CA core, profiles, serial
    bookkeeping, inventory record and audit entry as the REST API and the CLI."""

    def __init__(self, issuance: IssuanceService) -> None:
        self._issuance = issuance

    def issue(self, order: IssueOrder) -> IssuedChain:
        request = IssuanceRequest(order.profile, csr_public_key(order.csr), order.names, order.common_name)
        principal = None
        if order.allow_names is not None:
            # A team-bound account issues under its team's name policy, like an issue token.
            patterns = tuple(NamePattern.parse(p) for p in order.allow_names)
            principal = Principal(order.actor, order.team, Scope.ISSUE, patterns)
        annex = None
        if order.claim is not None:
            # The order moves with the serial (before signing) and with the record (after):
            # issuance's two transactions, not two more of finalize's own.
            order_id = order.claim.order_id
            annex = LedgerAnnex(order.claim, lambda issued: OrderIssued(order_id, to_pem(issued.fullchain)))
        try:
            result = self._issuance.issue(
                request, actor=order.actor, team=order.team, principal=principal, tags=("acme",), annex=annex
            )
        except AnnexRefused as exc:
            raise AcmeProblem("orderNotReady", exc.reason) from exc
        issued = result.issued
        return IssuedChain(
            serial=result.record.serial,
            chain_pem=to_pem(issued.fullchain),
            not_before=result.record.not_before,
            not_after=result.record.not_after,
        )


class ServiceRevoker:
    """Revokes through the revocation service's ``revoke(serial, reason, *, actor)``, which
    takes the RFC 5280 reason name, raises ``AlreadyRevoked`` (a Conflict) and, for
    ``keyCompromise``, blocks the key from any future issuance."""

    def __init__(self, revoke: Callable[..., Any]) -> None:
        self._revoke = revoke

    def revoke(self, serial: str, reason: str, *, actor: str) -> None:
        self._revoke(serial, reason, actor=actor)
