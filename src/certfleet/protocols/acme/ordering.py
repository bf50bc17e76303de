"""Order endpoints: newOrder, reading orders and authorizations, deactivating an
authorization and answering a challenge (RFC 8555 sections 7.4, 7.5 and 7.5.1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from certfleet.access import NamePattern
from certfleet.clock import Clock
from certfleet.config import AcmeSettings
from certfleet.errors import CertfleetError
from certfleet.protocols.acme.accounts import Account
from certfleet.protocols.acme.authentication import AcmeRequest, Authenticator, KeyMode, Verified
from certfleet.protocols.acme.authorizations import (
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    new_authorization,
)
from certfleet.protocols.acme.identifiers import Identifier, parse_identifiers
from certfleet.protocols.acme.orders import ORDER_LIFETIME, Order, OrderStatus, new_order_id
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.renewal import RenewalInfo
from certfleet.protocols.acme.responses import AcmeResponse
from certfleet.protocols.acme.transactions import RequestTransactions
from certfleet.protocols.acme.urls import AcmeUrls
from certfleet.protocols.acme.validation import ValidationRunner, ValidationTarget

__all__ = ["OFFERED_PROFILES", "OrderEndpoints", "order_response"]

# draft-ietf-acme-profiles: the certificate profiles newOrder may name.
OFFERED_PROFILES = {
    "tls-server": "TLS server certificate (serverAuth), 90 days",
    "tls-server-client": "TLS server and client certificate (serverAuth, clientAuth), 90 days",
    "internal-mtls-pq": "Internal mutual TLS with ML-DSA keys from the ML-DSA-65 hierarchy, 90 days",
}
_NEW_ORDER_FIELDS = {"identifiers", "notBefore", "notAfter", "profile", "replaces"}


def order_response(order: Order, urls: AcmeUrls, now: dt.datetime, status: int = 200) -> AcmeResponse:
    body = order.to_json(
        now,
        authz_url=urls.authz,
        finalize_url=urls.finalize(order.id),
        certificate_url=urls.certificate(order.id),
    )
    response = AcmeResponse.json(body, status)
    response.headers["Location"] = urls.order(order.id)
    return response


def name_policy(account: Account) -> Callable[[Identifier], str | None] | None:
    """An EAB-bound account may order only names its team's patterns allow."""
    if account.allow_names is None:
        return None
    patterns = tuple(NamePattern.parse(p) for p in account.allow_names)

    def check(identifier: Identifier) -> str | None:
        name = identifier.subject_name()
        if any(p.matches(name) for p in patterns):
            return None
        return f"team {account.team!r} may not obtain certificates for {identifier.value!r}"

    return check


def _require_post_as_get(verified: Verified, what: str) -> None:
    if not verified.message.is_post_as_get:
        raise AcmeProblem("malformed", f"{what} is read with POST-as-GET (an empty payload)")


class OrderEndpoints:
    def __init__(
        self,
        uow: RequestTransactions,
        clock: Clock,
        auth: Authenticator,
        settings: AcmeSettings,
        validation: ValidationRunner,
        renewal_info: RenewalInfo,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._auth = auth
        self._settings = settings
        self._validation = validation
        self._renewal_info = renewal_info

    def new_order(self, request: AcmeRequest) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        payload = verified.message.json_payload()
        unknown = set(payload) - _NEW_ORDER_FIELDS
        if unknown:
            raise AcmeProblem("malformed", f"unknown newOrder field(s): {', '.join(sorted(unknown))}")
        if payload.get("notBefore") is not None or payload.get("notAfter") is not None:
            raise AcmeProblem(
                "malformed", "notBefore and notAfter are not supported: the profile sets validity"
            )
        profile = payload.get("profile", self._settings.profile)
        if not isinstance(profile, str) or profile not in OFFERED_PROFILES:
            raise AcmeProblem(
                "invalidProfile", f"profile {profile!r} is not offered (see the directory's meta.profiles)"
            )
        try:
            identifiers = parse_identifiers(payload.get("identifiers"), name_policy(account))
        except CertfleetError as exc:
            if isinstance(exc, AcmeProblem):
                raise
            raise AcmeProblem("malformed", exc.detail) from exc
        replaces = payload.get("replaces")
        if replaces is not None:
            replaces = self._renewal_info.check_replaces(replaces, account, identifiers)
        now = self._clock.now()
        with self._uow() as uow:
            authz_ids: list[str] = []
            expires = now + ORDER_LIFETIME
            all_valid = True
            for identifier in identifiers:
                base = Identifier(identifier.type, identifier.base)
                reused = uow.acme.authorizations.find_reusable(account.id, base, identifier.is_wildcard, now)
                if reused is not None:
                    authz_ids.append(reused.id)
                    expires = min(expires, reused.expires_at)
                    continue
                authz = new_authorization(account.id, identifier, now)
                uow.acme.authorizations.add(authz)
                authz_ids.append(authz.id)
                all_valid = False
            order = Order(
                id=new_order_id(),
                account_id=account.id,
                status=OrderStatus.READY if all_valid else OrderStatus.PENDING,
                identifiers=identifiers,
                authz_ids=tuple(authz_ids),
                expires_at=expires,
                created_at=now,
                profile=profile,
                replaces=replaces,
            )
            uow.acme.orders.add(order)
        return order_response(order, request.urls, now, 201)

    def order(self, request: AcmeRequest, order_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        _require_post_as_get(verified, "an order")
        order = self.owned_order(verified.require_account(), order_id)
        return order_response(order, request.urls, self._clock.now())

    def owned_order(self, account: Account, order_id: str) -> Order:
        with self._uow(read_only=True) as uow:
            order = uow.acme.orders.get(order_id)
        if order is None:
            raise AcmeProblem("notFound", f"no order {order_id!r}")
        if order.account_id != account.id:
            raise AcmeProblem("unauthorized", "this order belongs to another account")
        return order

    def _owned_authz(self, account: Account, authz: Authorization | None, what: str) -> Authorization:
        if authz is None:
            raise AcmeProblem("notFound", f"no {what}")
        if authz.account_id != account.id:
            raise AcmeProblem("unauthorized", f"this {what} belongs to another account")
        return authz

    def authorization(self, request: AcmeRequest, authz_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        with self._uow() as uow:
            authz = self._owned_authz(account, uow.acme.authorizations.get(authz_id), "authorization")
        now = self._clock.now()
        if not verified.message.is_post_as_get:
            payload = verified.message.json_payload()
            if payload != {"status": "deactivated"}:
                raise AcmeProblem("malformed", "an authorization can only be updated to status 'deactivated'")
            with self._uow() as uow:
                if not uow.acme.authorizations.set_status(
                    authz.id, AuthzStatus.DEACTIVATED, expected=(AuthzStatus.PENDING, AuthzStatus.VALID)
                ):
                    raise AcmeProblem(
                        "malformed", f"an authorization that is {authz.status.value} cannot be deactivated"
                    )
                changed = uow.acme.authorizations.get(authz.id)
            assert changed is not None
            authz = changed
        body = authz.to_json(now, request.urls.challenge)
        return AcmeResponse.json(body)

    def challenge(self, request: AcmeRequest, challenge_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        if not verified.message.is_post_as_get:
            payload = verified.message.json_payload()
            if payload:
                # RFC 8555 7.5.1: the response is an empty object; stray fields are a client bug.
                raise AcmeProblem("malformed", "a challenge is answered with an empty JSON object {}")
        with self._uow() as uow:
            authz = self._owned_authz(
                account, uow.acme.authorizations.get_by_challenge(challenge_id), "challenge"
            )
        challenge = authz.challenge(challenge_id)
        assert challenge is not None
        now = self._clock.now()
        if not verified.message.is_post_as_get:
            status = authz.effective_status(now)
            if status is AuthzStatus.PENDING and challenge.status is ChallengeStatus.PENDING:
                with self._uow() as uow:
                    started = uow.acme.authorizations.start_challenge(challenge.id, now)
                if started:
                    challenge = self._validated(
                        replace(challenge, status=ChallengeStatus.PROCESSING),
                        request.urls.account(account.id),
                        ValidationTarget(authz, account.thumbprint),
                    )
            elif status is not AuthzStatus.VALID and challenge.status is ChallengeStatus.PENDING:
                raise AcmeProblem("malformed", f"the authorization is {status.value}: it cannot be validated")
        response = AcmeResponse.json(challenge.to_json(request.urls.challenge(challenge.id)))
        return response.link(request.urls.authz(authz.id), "up")

    def _validated(self, challenge: Challenge, account_url: str, target: ValidationTarget) -> Challenge:
        """Start the validation of a challenge just moved to ``processing`` and wait a
        moment for it: the answer then carries the result (RFC 8555 7.5.1 answers with the
        challenge as it is; "valid" or "invalid" are as good as "processing"), so the client's
        next read of the authorization settles it instead of a round of polls, each a signed
        request. A validation slower than ``answer_wait_seconds`` is answered "processing" and
        goes on in the background, as before."""
        # Validation starts once "processing" is visible to other connections: the worker
        # commits its result in a transaction of its own, which must find it. The worker is
        # given what this request read (the authorization, the key's thumbprint) and hands
        # back the challenge as it committed it: no transaction reads either again.
        self._uow.commit()
        validation = self._validation.submit(challenge.id, account_url, target)
        if not self._validation.finished(validation):
            return challenge
        return validation.result() or challenge
