"""Anti-replay nonces (RFC 8555 section 6.5): single use, expiring, and kept in the database
so that every server process (every worker, every node on one PostgreSQL) accepts once a
nonce any of them issued. Nothing about a nonce is kept in process memory.

Within a request, issuing and consuming join the request's one transaction
(:mod:`certfleet.protocols.acme.transactions`): an INSERT and a DELETE beside the work."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Protocol

from certfleet.clock import Clock
from certfleet.protocols.acme.problems import AcmeProblem

if TYPE_CHECKING:
    from certfleet.protocols.acme._ports import AcmeUnitOfWork
    from certfleet.protocols.acme.transactions import RequestTransactions

__all__ = ["NonceRepository", "NonceService"]

# Purge expired nonces on about one issue in this many: amortised, no background job.
_PURGE_EVERY = 200


class NonceRepository(Protocol):
    def add(self, value: str, expires_at: dt.datetime) -> None: ...

    def consume(self, value: str, now: dt.datetime) -> bool:
        """Delete the nonce if present and unexpired; True only for that one caller."""
        ...

    def purge_expired(self, now: dt.datetime) -> int: ...

    def relax_durability(self) -> None:
        """This transaction writes nothing but nonces: its commit need not wait for the disk
        (PostgreSQL: ``synchronous_commit`` off for it alone; SQLite in WAL mode with
        ``synchronous=NORMAL`` never waits). It is visible to every connection at once as
        usual; only a crash in the next fraction of a second could forget it, and forgetting
        it undoes a read's nonce bookkeeping, nothing else."""
        ...


class NonceService:
    def __init__(self, uow: RequestTransactions, clock: Clock, lifetime: dt.timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._lifetime = lifetime

    def issue(self) -> str:
        with self._uow() as uow:
            return self.issue_in(uow)

    def issue_in(self, uow: AcmeUnitOfWork, *, burn: str | None = None) -> str:
        """A new nonce, stored in ``uow``'s transaction; ``burn`` is a nonce to consume in
        the same transaction (one a rolled-back request had consumed)."""
        # 128 bits: unguessable, and a consumed value never comes back.
        value = secrets.token_urlsafe(16)
        now = self._clock.now()
        if burn is not None:
            uow.acme.nonces.consume(burn, now)
        uow.acme.nonces.add(value, now + self._lifetime)
        if secrets.randbelow(_PURGE_EVERY) == 0:
            uow.acme.nonces.purge_expired(now)
        return value

    def consume(self, value: object) -> None:
        """Raise ``badNonce`` unless ``value`` is a nonce issued here, unused and unexpired.
        The DELETE is the check, so two requests racing with one nonce cannot both pass."""
        if value is None:
            raise AcmeProblem("badNonce", "JWS has no 'nonce' header")
        if not isinstance(value, str) or not value or len(value) > 64:
            raise AcmeProblem("badNonce", "JWS 'nonce' header is not a nonce from this server")
        with self._uow() as uow:
            ok = uow.acme.nonces.consume(value, self._clock.now())
            if ok:
                self._uow.consuming_nonce(value)
        if not ok:
            raise AcmeProblem("badNonce", "nonce is unknown, already used or expired")
