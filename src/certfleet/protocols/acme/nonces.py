"""Anti-replay nonces (RFC 8555 section 6.5): single use, expiring, and shared so that every
server process accepts once a nonce any of them issued. Nothing about a nonce is kept in
process memory.

Two places hold them. In the database (PostgreSQL, where several nodes share it): within a
request, issuing and consuming join the request's one transaction
(:mod:`certfleet.protocols.acme.transactions`), an INSERT and a DELETE beside the work. Or in
a :class:`NodeNonceStore` the composition root gives for SQLite, whose every process runs on
one host: a file shared by the node's processes, outside the database, so that a POST-as-GET
poll is a read-only transaction and no request waits for SQLite's write lock for its nonces
(that wait was a quarter of the serving workers' time at concurrency 8)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Protocol

from certfleet.clock import Clock
from certfleet.protocols.acme.problems import AcmeProblem

if TYPE_CHECKING:
    from certfleet.protocols.acme._ports import AcmeUnitOfWork
    from certfleet.protocols.acme.transactions import RequestTransactions

__all__ = ["NodeNonceStore", "NonceRepository", "NonceService"]

# Purge expired nonces on about one issue in this many: amortised, no background job.
_PURGE_EVERY = 200


class NonceRepository(Protocol):
    def add(self, value: str, expires_at: dt.datetime) -> None: ...

    def consume(self, value: str, now: dt.datetime) -> bool:
        """Delete the nonce if present and unexpired; True only for that one caller."""
        ...

    def rotate(self, value: str, replacement: str, expires_at: dt.datetime, now: dt.datetime) -> bool:
        """Replace the nonce, if present and unexpired, by ``replacement`` (one statement
        instead of a DELETE and an INSERT); True only for that one caller."""
        ...

    def purge_expired(self, now: dt.datetime) -> int: ...

    def relax_durability(self) -> None:
        """This transaction writes nothing but nonces: its commit need not wait for the disk
        (PostgreSQL: ``synchronous_commit`` off for it alone; SQLite in WAL mode with
        ``synchronous=NORMAL`` never waits). It is visible to every connection at once as
        usual; only a crash in the next fraction of a second could forget it, and forgetting
        it undoes a read's nonce bookkeeping, nothing else."""
        ...


class NodeNonceStore(Protocol):
    """Nonces shared by every process of one node, outside the database
    (``certfleet.store.FileNonceStore``)."""

    def issue(self, expires_at: dt.datetime) -> str: ...

    def consume(self, value: str, now: dt.datetime) -> bool:
        """True for exactly one caller per nonce issued by this node's running server, before
        it expires; the use is recorded at once, whatever the request does next."""
        ...

    def close(self) -> None: ...


class NonceService:
    def __init__(
        self,
        uow: RequestTransactions,
        clock: Clock,
        lifetime: dt.timedelta,
        node_store: NodeNonceStore | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._lifetime = lifetime
        self._node = node_store

    @property
    def outside_database(self) -> bool:
        """Nonces cost the request's transaction nothing (a node store holds them)."""
        return self._node is not None

    def issue(self) -> str:
        if self._node is not None:
            return self._node.issue(self._clock.now() + self._lifetime)
        with self._uow() as uow:
            return self.issue_in(uow)

    def close(self) -> None:
        if self._node is not None:
            self._node.close()

    def issue_in(self, uow: AcmeUnitOfWork, *, burn: str | None = None) -> str:
        """A new nonce, stored in ``uow``'s transaction; ``burn`` is a nonce to consume in
        the same transaction (one a rolled-back request had consumed). With a node store,
        :meth:`issue` (its consumes are never rolled back)."""
        if self._node is not None:
            return self.issue()
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
        now = self._clock.now()
        if self._node is not None:
            ok = self._node.consume(value, now)
        else:
            # Used up and replaced by the answer's nonce in one statement: on PostgreSQL a
            # second request racing with the same nonce waits for the row, then finds the
            # new value and matches nothing.
            replacement = secrets.token_urlsafe(16)
            with self._uow() as uow:
                ok = uow.acme.nonces.rotate(value, replacement, now + self._lifetime, now)
                if ok:
                    self._uow.consuming_nonce(value, replacement)
        if not ok:
            raise AcmeProblem("badNonce", "nonce is unknown, already used or expired")
