"""API tokens: creation (shown once), the first start's admin token, listing, revocation,
and authentication."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from certfleet.access import ApiToken, MintedToken, Principal, Scope, check_secret, mint_token, split_token
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.errors import NotFound, Unauthenticated
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["TokenLookup", "TokenService"]


class TokenLookup(Protocol):
    def get(self, token_id: str) -> ApiToken | None:
        """The token as committed now (never a copy cached across requests)."""
        ...

    @property
    def local(self) -> bool:
        """True when :meth:`get` does no network I/O and never waits for a pool."""
        ...


class TokenService:
    """``lookup`` reads the token of each request without a unit of work (the store's
    :meth:`~certfleet.store.Store.token_reader`); without it a read-only unit of work does.

    There is deliberately no cache of tokens across requests: a revoked token must be
    refused by the next request on any worker or node, so each request must read something
    another process can change. The token's own row is that thing, and one indexed SELECT on
    a DBAPI connection costs no more than reading a shared generation number would."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, lookup: TokenLookup | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._lookup = lookup

    def create(
        self, team: str, scope: Scope, allow_names: Sequence[str], *, actor: str, description: str = ""
    ) -> MintedToken:
        minted = mint_token(team, scope, allow_names, self._clock.now(), description)
        with self._uow() as uow:
            self._add(uow, minted, actor)
        return minted

    def create_first_admin(self, *, actor: str) -> MintedToken | None:
        """The admin token of a first start: minted only while no token was ever created
        (revoked ones count), checked in the transaction that adds it, so a restart (or a
        second ``serve --init``) never prints, nor creates, another one."""
        minted = mint_token("admin", Scope.ADMIN, [], self._clock.now(), "first start")
        with self._uow() as uow:
            if uow.tokens.list():
                return None
            self._add(uow, minted, actor)
        return minted

    def _add(self, uow: UnitOfWork, minted: MintedToken, actor: str) -> None:
        uow.tokens.add(minted.record)
        AuditLog(uow.audit, self._clock).record(
            actor,
            "token.created",
            minted.record.id,
            {
                "team": minted.record.team,
                "scope": minted.record.scope.value,
                "allow_names": [p.text for p in minted.record.allow_names],
            },
        )

    def list(self) -> Sequence[ApiToken]:
        with self._uow(read_only=True) as uow:
            return list(uow.tokens.list())

    def revoke(self, token_id: str, *, actor: str) -> None:
        with self._uow() as uow:
            if not uow.tokens.revoke(token_id, self._clock.now()):
                raise NotFound(f"no active token {token_id!r}")
            AuditLog(uow.audit, self._clock).record(actor, "token.revoked", token_id)

    @property
    def lookup_is_local(self) -> bool:
        """True when :meth:`authenticate` reads a local SQLite file through a connection of
        its own (tens of microseconds, no pool wait): cheap enough for an event loop."""
        return self._lookup is not None and self._lookup.local

    def authenticate(self, token: str) -> Principal:
        token_id, secret = split_token(token)
        if self._lookup is not None:
            record = self._lookup.get(token_id)
        else:
            with self._uow(read_only=True) as uow:
                record = uow.tokens.get(token_id)
        if record is None or record.revoked_at is not None or not check_secret(record, secret):
            raise Unauthenticated("invalid or revoked API token")
        return Principal(f"token:{record.id}", record.team, record.scope, record.allow_names)
