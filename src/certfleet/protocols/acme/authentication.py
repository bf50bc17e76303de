"""Authenticating a POST (RFC 8555 section 6.2-6.5): parse the JWS, find the key (``jwk``
header or the account named by ``kid``), verify the signature, then the ``url`` and the
nonce. The signature comes first so an unsigned request cannot burn a valid nonce."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from josepy.jwk import JWK

from certfleet.protocols.acme.accounts import Account, AccountStatus
from certfleet.protocols.acme.jws import MAX_BODY_BYTES, JwsMessage, check_content_type, parse_jws
from certfleet.protocols.acme.nonces import NonceService
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.transactions import RequestTransactions
from certfleet.protocols.acme.urls import AcmeUrls

__all__ = ["AcmeRequest", "Authenticator", "KeyMode", "Verified"]


class KeyMode(enum.Enum):
    JWK = "jwk"  # newAccount, revokeCert by certificate key
    KID = "kid"  # everything an account does
    EITHER = "either"  # revokeCert


@dataclass(frozen=True)
class AcmeRequest:
    """A POST as received: the URL the client asked for, its content type and raw body."""

    url: str
    content_type: str | None
    body: bytes
    urls: AcmeUrls


@dataclass(frozen=True)
class Verified:
    message: JwsMessage
    key: JWK
    account: Account | None

    def require_account(self) -> Account:
        assert self.account is not None
        return self.account


class Authenticator:
    def __init__(self, uow: RequestTransactions, nonces: NonceService) -> None:
        self._uow = uow
        self._nonces = nonces

    def verify(self, request: AcmeRequest, mode: KeyMode, *, allow_inactive: bool = False) -> Verified:
        check_content_type(request.content_type)
        message = parse_jws(request.body, max_bytes=MAX_BODY_BYTES)
        if message.is_post_as_get:
            # Before the account is read: a read's transaction may then be read-only.
            self._uow.reading()
        if mode is KeyMode.JWK and message.kid is not None:
            raise AcmeProblem("malformed", "this request must be signed with a 'jwk' header, not 'kid'")
        if mode is KeyMode.KID and message.jwk is not None:
            raise AcmeProblem("malformed", "this request must be signed with the account's 'kid'")
        account: Account | None = None
        if message.kid is not None:
            account_id = request.urls.account_id_of(message.kid)
            if account_id is not None:
                with self._uow(read_only=True) as uow:
                    account = uow.acme.accounts.get(account_id)
            if account is None:
                raise AcmeProblem("accountDoesNotExist", f"no account {message.kid!r} on this server")
            key = account.key()
        else:
            assert message.jwk is not None
            key = message.jwk
        message.verify(key)
        if not isinstance(message.url, str):
            raise AcmeProblem("malformed", "JWS protected header has no 'url'")
        if message.url != request.url:
            # RFC 8555 6.4 (Boulder and Pebble answer malformed too).
            raise AcmeProblem(
                "malformed", f"JWS 'url' {message.url!r} is not the request URL {request.url!r}"
            )
        self._nonces.consume(message.nonce)
        if account is not None and account.status is not AccountStatus.VALID and not allow_inactive:
            raise AcmeProblem("unauthorized", f"account is {account.status.value}")
        return Verified(message, key, account)
