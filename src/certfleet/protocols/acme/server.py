"""The ACME server: one object the HTTP router calls and the CLI administers.

Every POST answer, success or problem, carries a fresh ``Replay-Nonce`` (RFC 8555 section
6.5: a client that got ``badNonce`` retries with it) and a ``Link`` to the directory. A POST
is one database transaction: consuming its nonce, loading the account, the work and the next
nonce (:mod:`certfleet.protocols.acme.transactions`); finalize and revokeCert commit before
they call the CA or the revocation service.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

from certfleet.access import NamePattern
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.config import AcmeSettings
from certfleet.errors import CertfleetError, Conflict, InvalidInput, NotFound
from certfleet.inventory import CertificateQuery
from certfleet.protocols.acme._ports import AcmeUnitOfWorkFactory, Issuer, Revoker
from certfleet.protocols.acme.ari import RenewalOverride
from certfleet.protocols.acme.authentication import AcmeRequest, Authenticator
from certfleet.protocols.acme.authorizations import DNS_01, HTTP_01, TLS_ALPN_01
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.challenges import Dns01Validator, Http01Validator, TlsAlpn01Validator
from certfleet.protocols.acme.eab import EabKey, MintedEabKey, mint_eab_key
from certfleet.protocols.acme.finalize import Finalizer
from certfleet.protocols.acme.jws import MAX_BODY_BYTES
from certfleet.protocols.acme.networks import NetworkPolicy
from certfleet.protocols.acme.nonces import NodeNonceStore, NonceService
from certfleet.protocols.acme.ordering import OFFERED_PROFILES, OrderEndpoints
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.recovery import StalledWork, StalledWorkOutcome
from certfleet.protocols.acme.registration import AccountEndpoints
from certfleet.protocols.acme.renewal import RenewalInfo, RenewNowOutcome
from certfleet.protocols.acme.resolver import DnsResolver, Resolver
from certfleet.protocols.acme.responses import AcmeResponse, problem_response
from certfleet.protocols.acme.revocation import RevocationEndpoint
from certfleet.protocols.acme.transactions import RequestTransactions
from certfleet.protocols.acme.urls import AcmeUrls
from certfleet.protocols.acme.validation import ValidationRunner

__all__ = ["AcmeServer", "Endpoint"]


class Endpoint(enum.Enum):
    NEW_ACCOUNT = "new-account"
    ACCOUNT = "account"
    ACCOUNT_ORDERS = "account-orders"
    NEW_ORDER = "new-order"
    ORDER = "order"
    FINALIZE = "finalize"
    AUTHZ = "authz"
    CHALLENGE = "challenge"
    CERTIFICATE = "certificate"
    REVOKE_CERT = "revoke-cert"
    KEY_CHANGE = "key-change"


# Endpoints whose POST-as-GET only reads: their transaction writes nothing but nonces.
_READS = frozenset(
    {
        Endpoint.ACCOUNT,
        Endpoint.ACCOUNT_ORDERS,
        Endpoint.ORDER,
        Endpoint.AUTHZ,
        Endpoint.CHALLENGE,
        Endpoint.CERTIFICATE,
    }
)


class AcmeServer:
    max_body_bytes = MAX_BODY_BYTES

    def __init__(
        self,
        settings: AcmeSettings,
        uow: AcmeUnitOfWorkFactory,
        clock: Clock,
        issuer: Issuer,
        revoker: Revoker | None = None,
        resolver: Resolver | None = None,
        node_nonces: NodeNonceStore | None = None,
    ) -> None:
        """``node_nonces``: where nonces live when every server process of this database is
        on one host (SQLite); ``None`` keeps them in the database (PostgreSQL: many nodes)."""
        self.settings = settings
        self._uow = uow
        self._clock = clock
        resolver = resolver or DnsResolver(settings.resolver, settings.validation_timeout_seconds)
        timeout = settings.validation_timeout_seconds
        # Every component joins the current request's transaction through this factory.
        self.transactions = tx = RequestTransactions(uow)
        self.nonces = NonceService(tx, clock, settings.nonce_lifetime, node_nonces)
        self._auth = Authenticator(tx, self.nonces)
        caa = CaaChecker(resolver, settings.caa_identities)
        networks = NetworkPolicy.from_settings(settings)
        self.validation = ValidationRunner(
            tx,
            clock,
            {
                HTTP_01: Http01Validator(resolver, settings.http01_port, timeout, networks),
                DNS_01: Dns01Validator(resolver),
                TLS_ALPN_01: TlsAlpn01Validator(resolver, settings.tlsalpn01_port, timeout, networks),
            },
            caa,
            workers=settings.validation_workers,
            authz_lifetime=settings.authz_reuse,
            together=resolver.together if isinstance(resolver, DnsResolver) else None,
        )
        self.renewal_info = RenewalInfo(tx, clock, settings.ari_retry_after)
        self._stalled = StalledWork(tx, clock, self.validation, settings.stalled_after)
        self._accounts = AccountEndpoints(tx, clock, self._auth, settings)
        self._orders = OrderEndpoints(tx, clock, self._auth, settings, self.validation, self.renewal_info)
        self._finalizer = Finalizer(tx, clock, self._auth, settings, self._orders, caa, issuer)
        self.revoker = revoker
        self._revocation = RevocationEndpoint(tx, clock, self._auth, revoker)
        self._handlers: dict[Endpoint, Callable[..., AcmeResponse]] = {
            Endpoint.NEW_ACCOUNT: self._accounts.new_account,
            Endpoint.ACCOUNT: self._accounts.account,
            Endpoint.ACCOUNT_ORDERS: self._accounts.orders,
            Endpoint.KEY_CHANGE: self._accounts.key_change,
            Endpoint.NEW_ORDER: self._orders.new_order,
            Endpoint.ORDER: self._orders.order,
            Endpoint.AUTHZ: self._orders.authorization,
            Endpoint.CHALLENGE: self._orders.challenge,
            Endpoint.FINALIZE: self._finalizer.finalize,
            Endpoint.CERTIFICATE: self._finalizer.certificate,
            Endpoint.REVOKE_CERT: self._revocation.revoke,
        }

    def close(self) -> None:
        self.validation.close()
        self.nonces.close()

    def resolve_stalled(self) -> StalledWorkOutcome:
        """Orders and challenges a dead process left ``processing`` (the ``acme.stalled``
        background job)."""
        return self._stalled.resolve()

    # -- HTTP-facing -------------------------------------------------------------------------

    def directory(self, urls: AcmeUrls) -> dict[str, Any]:
        """RFC 8555 section 7.1.1, with ``renewalInfo`` (RFC 9773) and ``meta.profiles``."""
        meta: dict[str, Any] = {
            "externalAccountRequired": self.settings.require_eab,
            "profiles": dict(OFFERED_PROFILES),
            "caaIdentities": list(self.settings.caa_identities),
            "termsOfService": self.settings.terms_of_service or urls.terms(),
        }
        meta["website"] = self.settings.website or urls.base.removesuffix("/acme") + "/"
        return {
            "newNonce": urls.new_nonce(),
            "newAccount": urls.new_account(),
            "newOrder": urls.new_order(),
            "revokeCert": urls.revoke_cert(),
            "keyChange": urls.key_change(),
            "renewalInfo": urls.renewal_info(),
            "meta": meta,
        }

    def new_nonce(self) -> str:
        return self.nonces.issue()

    def handle(
        self, endpoint: Endpoint, request: AcmeRequest, resource_id: str | None = None
    ) -> AcmeResponse:
        """Run one POST in one transaction. Problems become problem documents; every answer
        gets a nonce (a problem's in a transaction of its own that also burns the nonce the
        rolled-back request had consumed)."""
        handler = self._handlers[endpoint]
        scope = None
        # Nonces outside the database: a POST-as-GET of a reading endpoint writes nothing, so
        # its transaction is read-only (on SQLite it never queues for the write lock).
        outside = self.nonces.outside_database
        try:
            reads = outside and endpoint in _READS
            with self.transactions.request(reads_read_only=reads, read_first=outside) as scope:
                response = handler(request) if resource_id is None else handler(request, resource_id)
                if not outside:
                    reading = scope.post_as_get and endpoint in _READS
                    prepared = scope.prepared_nonce  # put in place of the one consumed
                    if prepared is not None and not reading:
                        response.headers["Replay-Nonce"] = prepared
                    else:
                        with self.transactions() as uow:
                            if reading:
                                # Polling reads are most requests: their commit, which
                                # only moves nonces, does not wait for the disk.
                                uow.acme.nonces.relax_durability()
                            response.headers["Replay-Nonce"] = prepared or self.nonces.issue_in(uow)
        except AcmeProblem as problem:
            response = problem_response(problem)
        except CertfleetError as exc:
            # A core refusal that no endpoint translated: still a precise problem, never a 500.
            kind = "malformed" if isinstance(exc, InvalidInput) else "serverInternal"
            response = problem_response(AcmeProblem(kind, exc.detail))
        if "Replay-Nonce" not in response.headers:
            if outside:
                # Issued once the request committed; a refused request's nonce was used up
                # in the node store when it was consumed.
                response.headers["Replay-Nonce"] = self.nonces.issue()
            else:
                burn = scope.uncommitted_nonce if scope is not None else None
                with self.transactions() as uow:
                    response.headers["Replay-Nonce"] = self.nonces.issue_in(uow, burn=burn)
        return self._link(response, request.urls)

    def decorate(self, response: AcmeResponse, urls: AcmeUrls) -> AcmeResponse:
        """A nonce and the directory link on an answer made outside :meth:`handle`."""
        response.headers["Replay-Nonce"] = self.nonces.issue()
        return self._link(response, urls)

    @staticmethod
    def _link(response: AcmeResponse, urls: AcmeUrls) -> AcmeResponse:
        response.headers["Cache-Control"] = "no-store"
        return response.link(urls.directory(), "index")

    def renewal_info_response(self, cert_id: str, urls: AcmeUrls) -> AcmeResponse:
        try:
            response = self.renewal_info.get(cert_id)
        except AcmeProblem as problem:
            response = problem_response(problem)
        return response.link(urls.directory(), "index")

    # -- operator ----------------------------------------------------------------------------

    def create_eab_key(
        self, team: str, allow_names: Sequence[str], *, actor: str, description: str = ""
    ) -> MintedEabKey:
        if not team.strip():
            raise InvalidInput("an external account key needs a team")
        patterns = [NamePattern.parse(p).text for p in allow_names]
        minted = mint_eab_key(team.strip(), patterns, self._clock.now(), description)
        with self._uow() as uow:
            uow.acme.eab_keys.add(minted.record)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "acme.eab.created",
                minted.record.kid,
                {"team": minted.record.team, "allow_names": patterns},
            )
        return minted

    def eab_keys(self) -> Sequence[EabKey]:
        with self._uow() as uow:
            return list(uow.acme.eab_keys.list())

    def revoke_eab_key(self, kid: str, *, actor: str) -> EabKey:
        """Withdraw a key handed out but not used yet: no account can bind it any more. A
        bound key cannot be withdrawn (it made an account: deactivate that instead)."""
        with self._uow() as uow:
            key = next((k for k in uow.acme.eab_keys.list() if k.kid == kid), None)
            if key is None:
                raise NotFound(f"no external account key {kid!r}")
            if key.account_id is not None or not uow.acme.eab_keys.delete_unbound(kid):
                raise Conflict(
                    f"external account key {kid!r} is already bound to an account: it cannot be "
                    "used again; deactivate the account instead"
                )
            AuditLog(uow.audit, self._clock).record(actor, "acme.eab.revoked", kid, {"team": key.team})
        return key

    def renew_now_selected(
        self,
        serials: Sequence[str],
        query: CertificateQuery | None = None,
        *,
        every: bool = False,
        actor: str,
    ) -> list[RenewNowOutcome]:
        """``acme renew-now`` (and its endpoint): serials, or a selection (``query``), or
        ``every`` active certificate certfleet issued; one outcome per certificate."""
        selector = query is not None and any((query.issuer, query.san, query.team))
        if not serials and not selector and not every:
            raise InvalidInput("give serials, a selector (--issuer, --san, --team) or --all")
        if serials and (selector or every):
            raise InvalidInput("give either serials or a selector, not both")
        if serials:
            return self.renew_now(serials, actor=actor)
        return self.renew_now_matching(query or CertificateQuery(), actor=actor)

    def renew_now(self, serials: Sequence[str], *, actor: str) -> list[RenewNowOutcome]:
        return self.renewal_info.renew_now(serials, actor=actor)

    def renewal_overrides(self) -> list[RenewalOverride]:
        return self.renewal_info.overrides()

    def clear_renewal_override(self, serial: str, *, actor: str) -> RenewalOverride:
        return self.renewal_info.clear_override(serial, actor=actor)

    def renew_now_matching(self, query: CertificateQuery, *, actor: str) -> list[RenewNowOutcome]:
        return self.renewal_info.renew_now_matching(query, actor=actor)
