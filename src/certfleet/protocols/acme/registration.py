"""Account endpoints: newAccount, account update and deactivation, the orders list and
keyChange (RFC 8555 sections 7.3 and 7.3.5)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.config import AcmeSettings
from certfleet.errors import Conflict
from certfleet.protocols.acme._ports import AcmeUnitOfWorkFactory
from certfleet.protocols.acme.accounts import Account, AccountStatus, new_account_id, parse_contacts
from certfleet.protocols.acme.authentication import AcmeRequest, Authenticator, KeyMode
from certfleet.protocols.acme.eab import check_binding
from certfleet.protocols.acme.jws import JwsMessage, load_public_jwk, parse_jws, thumbprint
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.responses import AcmeResponse

__all__ = ["AccountEndpoints"]

MAX_ORDERS_LISTED = 1000
_NEW_ACCOUNT_FIELDS = {"contact", "termsOfServiceAgreed", "onlyReturnExisting", "externalAccountBinding"}


def _account_response(account: Account, request: AcmeRequest, status: int = 200) -> AcmeResponse:
    urls = request.urls
    response = AcmeResponse.json(account.to_json(urls.account_orders(account.id)), status)
    response.headers["Location"] = urls.account(account.id)
    return response


class AccountEndpoints:
    def __init__(
        self, uow: AcmeUnitOfWorkFactory, clock: Clock, auth: Authenticator, settings: AcmeSettings
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._auth = auth
        self._settings = settings

    def new_account(self, request: AcmeRequest) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.JWK)
        payload = verified.message.json_payload()
        unknown = set(payload) - _NEW_ACCOUNT_FIELDS - {"status"}
        if unknown:
            raise AcmeProblem("malformed", f"unknown newAccount field(s): {', '.join(sorted(unknown))}")
        key_id = thumbprint(verified.key)
        with self._uow() as uow:
            existing = uow.acme.accounts.get_by_thumbprint(key_id)
        if existing is not None:
            # RFC 8555 7.3.1: the key already has an account; answer with it (200, Location).
            if existing.status is not AccountStatus.VALID:
                raise AcmeProblem("unauthorized", f"the account of this key is {existing.status.value}")
            return _account_response(existing, request)
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account exists for this key")
        contacts = parse_contacts(payload.get("contact"))
        agreed = payload.get("termsOfServiceAgreed", False)
        if not isinstance(agreed, bool):
            raise AcmeProblem("malformed", "termsOfServiceAgreed must be true or false")
        if self._settings.terms_of_service and not agreed:
            raise AcmeProblem("userActionRequired", "you must agree to the terms of service")
        binding = payload.get("externalAccountBinding")
        if binding is None and self._settings.require_eab:
            raise AcmeProblem("externalAccountRequired", "this server requires an external account binding")
        now = self._clock.now()
        account = Account(
            id=new_account_id(),
            thumbprint=key_id,
            jwk_json=json.dumps(verified.key.public_key().to_partial_json(), sort_keys=True),
            status=AccountStatus.VALID,
            contacts=contacts,
            tos_agreed=agreed,
            created_at=now,
        )
        with self._uow() as uow:
            if binding is not None:
                eab = check_binding(binding, verified.key, request.urls.new_account(), uow.acme.eab_keys)
                account = replace(
                    account, eab_kid=eab.kid, team=eab.team, allow_names=eab.allow_names or None
                )
            try:
                uow.acme.accounts.add(account)
            except Conflict:
                # Another request created this key's account between our look-up and insert.
                raced = uow.acme.accounts.get_by_thumbprint(key_id)
                if raced is None:  # pragma: no cover - the conflict names this key
                    raise
                return _account_response(raced, request)
            if binding is not None and not uow.acme.eab_keys.bind(str(account.eab_kid), account.id, now):
                raise AcmeProblem("unauthorized", "external account key is already bound to an account")
            AuditLog(uow.audit, self._clock).record(
                f"acme:{account.id}",
                "acme.account.created",
                request.urls.account(account.id),
                {"eab_kid": account.eab_kid, "team": account.team, "contacts": list(contacts)},
            )
        return _account_response(account, request, 201)

    def account(self, request: AcmeRequest, account_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        if account.id != account_id:
            raise AcmeProblem("unauthorized", "the account URL is not the signing account")
        if verified.message.is_post_as_get:
            return _account_response(account, request)
        payload = verified.message.json_payload()
        if "termsOfServiceAgreed" in payload and payload["termsOfServiceAgreed"] is not True:
            raise AcmeProblem("malformed", "termsOfServiceAgreed can only be set to true")
        status = payload.get("status")
        if status is not None and status != "deactivated":
            raise AcmeProblem("malformed", "an account can only be updated to status 'deactivated'")
        updated = account
        if "contact" in payload:
            updated = replace(updated, contacts=parse_contacts(payload["contact"]))
        if payload.get("termsOfServiceAgreed") is True:
            updated = replace(updated, tos_agreed=True)
        if status == "deactivated":
            updated = updated.with_status(AccountStatus.DEACTIVATED)
        if updated != account:
            with self._uow() as uow:
                uow.acme.accounts.update(updated)
                if status == "deactivated":
                    AuditLog(uow.audit, self._clock).record(
                        f"acme:{account.id}", "acme.account.deactivated", request.urls.account(account.id)
                    )
        return _account_response(updated, request)

    def orders(self, request: AcmeRequest, account_id: str) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        if account.id != account_id:
            raise AcmeProblem("unauthorized", "these are not the signing account's orders")
        if not verified.message.is_post_as_get:
            raise AcmeProblem("malformed", "the orders list is read with POST-as-GET (empty payload)")
        with self._uow() as uow:
            ids = uow.acme.orders.list_for_account(account.id, MAX_ORDERS_LISTED)
        return AcmeResponse.json({"orders": [request.urls.order(i) for i in ids]})

    def key_change(self, request: AcmeRequest) -> AcmeResponse:
        """RFC 8555 7.3.5: the outer JWS is signed by the account's key, the inner one (its
        payload) by the new key, over ``{"account", "oldKey"}`` and with the same ``url``."""
        verified = self._auth.verify(request, KeyMode.KID)
        account = verified.require_account()
        inner = self._inner_jws(verified.message.payload)
        new_key = inner.jwk
        assert new_key is not None
        inner.verify(new_key)
        if inner.url != request.url:
            raise AcmeProblem("malformed", "inner JWS 'url' must equal the outer JWS 'url'")
        body = inner.json_payload()
        if body.get("account") != verified.message.kid:
            raise AcmeProblem("malformed", "inner JWS 'account' must be the signing account's URL")
        old_key = body.get("oldKey")
        if not isinstance(old_key, dict) or _jwk_thumbprint(old_key) != account.thumbprint:
            raise AcmeProblem("malformed", "inner JWS 'oldKey' is not the account's current key")
        new_id = thumbprint(new_key)
        with self._uow() as uow:
            holder = uow.acme.accounts.get_by_thumbprint(new_id)
            if holder is not None:
                raise AcmeProblem(
                    "conflict",
                    "the new key already belongs to an account",
                    headers={"Location": request.urls.account(holder.id)},
                )
            updated = replace(
                account,
                thumbprint=new_id,
                jwk_json=json.dumps(new_key.public_key().to_partial_json(), sort_keys=True),
            )
            try:
                uow.acme.accounts.update(updated)
            except Conflict as exc:
                raise AcmeProblem("conflict", "the new key already belongs to an account") from exc
            AuditLog(uow.audit, self._clock).record(
                f"acme:{account.id}",
                "acme.account.key_changed",
                request.urls.account(account.id),
                {"old_thumbprint": account.thumbprint, "new_thumbprint": new_id},
            )
        return _account_response(updated, request)

    @staticmethod
    def _inner_jws(payload: bytes) -> JwsMessage:
        try:
            inner = parse_jws(payload)
        except AcmeProblem as problem:
            raise AcmeProblem(problem.kind, f"inner JWS: {problem.detail}", extra=problem.extra) from problem
        if inner.jwk is None:
            raise AcmeProblem("malformed", "inner JWS must carry the new key in a 'jwk' header")
        if "nonce" in inner.protected:
            raise AcmeProblem("malformed", "inner JWS must not have a 'nonce' header")
        return inner


def _jwk_thumbprint(value: dict[str, Any]) -> str | None:
    try:
        return thumbprint(load_public_jwk(value))
    except AcmeProblem:
        return None
