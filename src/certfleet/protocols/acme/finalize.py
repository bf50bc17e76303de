"""Finalize and certificate download (RFC 8555 sections 7.4 and 7.4.2).

Every check that can refuse the request runs before the order changes: the CSR, its names,
its key, the authorizations and a stale CAA record. Only then does a conditional UPDATE move
the order from ``ready`` to ``processing``, in the issuance transaction that reserves the
certificate's serial (``FinalizeClaim``); of several concurrent finalizes exactly one wins
it, so an order never yields two certificates. The order becomes ``valid`` in the
transaction that records the certificate. A refusal by the CA after the claim moves it back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from certfleet.clock import Clock
from certfleet.config import AcmeSettings
from certfleet.errors import CertfleetError, Forbidden, InvalidInput
from certfleet.policy import RuleViolation
from certfleet.protocols.acme._ports import FinalizeClaim, IssueOrder, Issuer
from certfleet.protocols.acme.accounts import Account
from certfleet.protocols.acme.authentication import AcmeRequest, Authenticator, KeyMode
from certfleet.protocols.acme.authorizations import Authorization, AuthzStatus, ChallengeStatus
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.jws import b64decode, spki_of_jwk
from certfleet.protocols.acme.ordering import OrderEndpoints, order_response
from certfleet.protocols.acme.orders import Order, OrderStatus
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.responses import AcmeResponse
from certfleet.protocols.acme.transactions import RequestTransactions
from certfleet.x509 import (
    SubjectName,
    check_public_key,
    csr_public_key,
    load_csr,
    names_from_csr,
    parse_names,
    spki_der,
)

__all__ = ["PEM_CHAIN_CONTENT_TYPE", "Finalizer"]

PEM_CHAIN_CONTENT_TYPE = "application/pem-certificate-chain"
_log = logging.getLogger("certfleet.acme.finalize")


class Finalizer:
    def __init__(
        self,
        uow: RequestTransactions,
        clock: Clock,
        auth: Authenticator,
        settings: AcmeSettings,
        orders: OrderEndpoints,
        caa: CaaChecker,
        issuer: Issuer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._auth = auth
        self._settings = settings
        self._orders = orders
        self._caa = caa
        self._issuer = issuer

    def finalize(self, request: AcmeRequest, order_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        payload = verified.message.json_payload()
        order = self._orders.owned_order(account, order_id)
        now = self._clock.now()
        status = order.effective_status(now)
        if status is not OrderStatus.READY:
            raise AcmeProblem("orderNotReady", f"the order is {status.value}, not ready")
        if set(payload) != {"csr"}:
            raise AcmeProblem("malformed", "finalize takes exactly one field, 'csr'")
        issue = self._check_csr(payload["csr"], order, account)
        authzs = self._valid_authorizations(order)
        self._recheck_caa(authzs, request.urls.account(account.id))
        # The nonce and the checks are committed before the CA is asked (it opens
        # transactions of its own). The order moves to processing in the transaction that
        # reserves the serial, re-checking there that it is still ready with every
        # authorization valid (of concurrent finalizes one wins, the others are refused with
        # nothing written), and to valid in the one that records the certificate.
        self._uow.commit()
        claimed_at = self._clock.now()
        try:
            issued = self._issuer.issue(replace(issue, claim=FinalizeClaim(order.id, claimed_at)))
        except AcmeProblem as problem:
            if problem.kind != "orderNotReady":  # else the claim was refused: nothing to undo
                self._back_to_ready(order.id, claimed_at)
            raise
        except CertfleetError as exc:
            self._back_to_ready(order.id, claimed_at)
            raise _refusal(exc) from exc
        except BaseException:
            self._back_to_ready(order.id, claimed_at)
            raise
        done = replace(
            order,
            status=OrderStatus.VALID,
            certificate_serial=issued.serial,
            certificate_chain=issued.chain_pem,
        )
        return order_response(done, request.urls, self._clock.now())

    def _back_to_ready(self, order_id: str, claimed_at: dt.datetime) -> None:
        """Undo this finalize's claim when the CA refused or failed after it (if the claim
        was written at all: a refusal before the serial leaves the order ready)."""
        with self._uow() as uow:
            uow.acme.orders.transition(
                order_id, OrderStatus.READY, expected=(OrderStatus.PROCESSING,), processing_since=claimed_at
            )
        self._uow.commit()  # kept although the request then fails

    def _check_csr(self, raw: object, order: Order, account: Account) -> IssueOrder:
        der = b64decode(raw, "csr")
        try:
            csr = load_csr(der)
            public_key = csr_public_key(csr)
            check_public_key(public_key, allow_ed25519=False)
            common_name, san_names = names_from_csr(csr)
            names = parse_names([*san_names, *([common_name] if common_name else [])])
            cn = SubjectName.parse(common_name).value if common_name else None
        except CertfleetError as exc:
            raise AcmeProblem("badCSR", exc.detail) from exc
        if spki_der(public_key) == spki_of_jwk(account.key()):
            # RFC 8555 section 11.1: the account key must not also be a certificate's key (a
            # signature by one could then be passed off as the other's).
            raise AcmeProblem("badCSR", "the CSR's public key is this account's key: use a separate key")
        ordered = {i.subject_name() for i in order.identifiers}
        if set(names) != ordered:
            wanted = ", ".join(sorted(n.value for n in ordered))
            got = ", ".join(sorted(n.value for n in names)) or "none"
            raise AcmeProblem("badCSR", f"the CSR names {got}; the order is for {wanted}")
        if cn and len(cn) > 64:
            cn = None  # RFC 5280 ub-common-name: the name stays in the SAN only
        return IssueOrder(
            csr=csr,
            names=tuple(i.value for i in order.identifiers),
            common_name=cn,
            profile=order.profile,
            team=account.team,
            allow_names=account.allow_names,
            actor=f"acme:{account.id}",
        )

    def _valid_authorizations(self, order: Order) -> list[Authorization]:
        now = self._clock.now()
        found: list[Authorization] = []
        # For a precise refusal; the claim that moves the order to processing checks them
        # again in the serial's transaction (store._acme_ledger).
        with self._uow(read_only=True) as uow:
            for authz_id in order.authz_ids:
                authz = uow.acme.authorizations.get(authz_id)
                if authz is None or authz.effective_status(now) is not AuthzStatus.VALID:
                    state = authz.effective_status(now).value if authz else "missing"
                    raise AcmeProblem("orderNotReady", f"an authorization of the order is {state}")
                found.append(authz)
        return found

    def _recheck_caa(self, authzs: list[Authorization], account_uri: str) -> None:
        """RFC 8659 and BR 3.2.2.8: a CAA check older than ``caa_recheck`` is repeated."""
        now = self._clock.now()
        for authz in authzs:
            if authz.identifier.type != "dns":
                continue
            checked = authz.caa_checked_at
            if checked is not None and now - checked <= self._settings.caa_recheck:
                continue
            method = next((c.type for c in authz.challenges if c.status is ChallengeStatus.VALID), "")
            self._uow.commit()  # no transaction stays open across DNS look-ups
            self._caa.check(
                authz.identifier.value, wildcard=authz.wildcard, account_uri=account_uri, method=method
            )
            with self._uow() as uow:
                uow.acme.authorizations.mark_caa_checked(authz.id, now)

    def certificate(self, request: AcmeRequest, order_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        if not verified.message.is_post_as_get:
            raise AcmeProblem("malformed", "a certificate is downloaded with POST-as-GET (an empty payload)")
        order = self._orders.owned_order(verified.require_account(), order_id)
        if order.certificate_chain is None:
            raise AcmeProblem("notFound", "this order has no certificate")
        return AcmeResponse(200, order.certificate_chain.encode(), PEM_CHAIN_CONTENT_TYPE)


def _refusal(exc: CertfleetError) -> AcmeProblem:
    if isinstance(exc, AcmeProblem):
        return exc
    if isinstance(exc, RuleViolation):
        # RFC 8555 section 6.7: a name the CA's policy forbids is rejectedIdentifier; a key
        # the policy refuses is a bad CSR; anything else the account may not have.
        if exc.about_names:
            return AcmeProblem("rejectedIdentifier", exc.detail)
        return AcmeProblem("badCSR" if exc.check == "key_types" else "unauthorized", exc.detail)
    if isinstance(exc, Forbidden):
        return AcmeProblem("unauthorized", exc.detail)
    if isinstance(exc, InvalidInput):
        return AcmeProblem("badCSR", exc.detail)
    _log.error("issuance failed: %s: %s", type(exc).__name__, exc)
    if exc.http_status == 503:  # e.g. the CA's HSM token is away: retry the finalize later
        return AcmeProblem("serverUnavailable", f"issuance failed: {exc.detail}")
    return AcmeProblem("serverInternal", f"issuance failed: {exc.detail}")
