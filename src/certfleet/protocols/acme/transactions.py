"""One transaction per ACME request.

Every signed POST consumes a nonce, loads the signing account, does its work and hands out
the next nonce. Run separately, that was four or five short transactions (each a BEGIN
IMMEDIATE on SQLite, a round trip and a commit on PostgreSQL) for a request that reads one
row; here they share one.

:class:`RequestTransactions` is the unit-of-work factory every endpoint receives. Inside a
request (:meth:`RequestTransactions.request`, opened by ``AcmeServer.handle``) each ``with
uow():`` block joins the request's transaction, opened on first use; outside one (the
validation workers, the operator's commands, the unsigned GETs) each block is a transaction
of its own, as before. An endpoint that is about to wait on something outside the database
(the CA, the revocation service, a DNS look-up) calls :meth:`RequestTransactions.commit`
first, so no lock is held across it (on SQLite the write lock would block every other
request, and the CA's own transaction would wait on ours). Work that must only start once
the request's changes are visible to other connections (a validation job reading the
challenge it was given) is registered with :meth:`RequestTransactions.after_commit`.

With nonces in the database, consuming one replaces it by the next in one statement (an
UPDATE of its row, :attr:`RequestScope.prepared_nonce`), handed out as the answer's
``Replay-Nonce`` when that transaction commits. A request that fails rolls its transaction
back, including the nonce it consumed and its replacement; the server then burns that nonce
in the transaction that issues the problem's ``Replay-Nonce``
(:attr:`RequestScope.uncommitted_nonce`), so a nonce is single use whatever the outcome.

When nonces live outside the database (a node store, on SQLite), a POST-as-GET to an
endpoint that only reads writes nothing at all: :meth:`RequestTransactions.request` is then
told ``reads_read_only`` and, once the request has said it is such a read
(:meth:`RequestTransactions.reading`, before its first block), its transaction is read-only
(on SQLite a deferred BEGIN that neither waits for the writer nor makes it wait).

The scope is per thread: a request runs on one thread from start to finish, and any other
thread (a validation worker) opens transactions of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field

from certfleet.protocols.acme._ports import AcmeUnitOfWork, AcmeUnitOfWorkFactory

__all__ = ["RequestScope", "RequestTransactions"]


class _Rollback(Exception):
    """Passed into a unit of work's ``__exit__`` to roll it back."""


@dataclass
class RequestScope:
    """What one request's transactions hold between ``with uow():`` blocks."""

    current: AbstractContextManager[AcmeUnitOfWork] | None = None
    uow: AcmeUnitOfWork | None = None
    after_commit: list[Callable[[], object]] = field(default_factory=list)
    # A nonce consumed in the open transaction: burnt again if that transaction rolls back.
    uncommitted_nonce: str | None = None
    # The nonce that replaced it in the same statement (rotation): the answer's
    # Replay-Nonce once its transaction commits, forgotten if it rolls back.
    prepared_nonce: str | None = None
    transactions: int = 0
    # The request was a POST-as-GET (RFC 8555 section 6.3): a read.
    post_as_get: bool = False
    # Such a read writes nothing (its endpoint only reads and its nonces are elsewhere).
    reads_read_only: bool = False
    # Nonces are elsewhere: read-only blocks before the first other one share a read-only
    # transaction of their own (``reader``), committed when the writing one opens.
    read_first: bool = False
    reader_cm: AbstractContextManager[AcmeUnitOfWork] | None = None
    reader: AcmeUnitOfWork | None = None


class RequestTransactions:
    def __init__(self, factory: AcmeUnitOfWorkFactory) -> None:
        self._factory = factory
        self._local = threading.local()

    def _scope(self) -> RequestScope | None:
        scope: RequestScope | None = getattr(self._local, "scope", None)
        return scope

    @contextmanager
    def __call__(self, *, read_only: bool = False) -> Iterator[AcmeUnitOfWork]:
        """Within a request, its transaction; outside one, a transaction of its own.

        ``read_only`` (the block only reads) matters in a request only when its nonces are
        outside the database (``read_first``): the read-only blocks before the request's
        first other block then share a read-only transaction, committed before the next
        one opens, so the write transaction (SQLite's one writer at a time) is not held
        across the account's look-up and the JWS signature check. Whatever they read is
        checked again by the write that depends on it (a conditional UPDATE), as across
        requests."""
        scope = self._scope()
        if scope is None:
            with self._factory(read_only=read_only) as uow:
                yield uow
            return
        if read_only and scope.read_first and scope.uow is None and not scope.post_as_get:
            if scope.reader is None:
                scope.reader_cm = self._factory(read_only=True)
                scope.reader = scope.reader_cm.__enter__()
                scope.transactions += 1
            yield scope.reader
            return
        self._end_reading(scope)
        if scope.uow is None:
            scope.current = self._factory(read_only=scope.reads_read_only and scope.post_as_get)
            scope.uow = scope.current.__enter__()
            scope.transactions += 1
        yield scope.uow

    @contextmanager
    def request(self, *, reads_read_only: bool = False, read_first: bool = False) -> Iterator[RequestScope]:
        """The request's scope: what is still open when the block ends normally is
        committed; an exception rolls it back and propagates. ``reads_read_only``: a
        POST-as-GET of this request writes nothing; ``read_first``: its nonces are outside
        the database (see the module doc and :meth:`__call__`)."""
        if self._scope() is not None:
            raise RuntimeError("an ACME request scope is already open on this thread")
        scope = RequestScope(reads_read_only=reads_read_only, read_first=read_first)
        self._local.scope = scope
        try:
            yield scope
        except BaseException:
            self._rollback(scope)
            raise
        finally:
            self._local.scope = None
        self._commit(scope)

    def commit(self) -> None:
        """Commit the request's open transaction (if any) and run its after-commit work; the
        next ``with uow():`` opens a new one. Outside a request there is nothing to do."""
        scope = self._scope()
        if scope is not None:
            self._commit(scope)

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the request's open transaction has committed (at once when
        there is none: outside a request every block has already committed)."""
        scope = self._scope()
        if scope is None or scope.uow is None:
            action()
        else:
            scope.after_commit.append(action)

    def reading(self) -> None:
        """Note that the request is a POST-as-GET (before its first block, so that a read's
        transaction can be read-only)."""
        scope = self._scope()
        if scope is not None:
            scope.post_as_get = True

    def consuming_nonce(self, value: str, replacement: str) -> None:
        """Note a nonce consumed in the request's open transaction and the one that took
        its place (see the module doc)."""
        scope = self._scope()
        if scope is not None and scope.uow is not None:
            scope.uncommitted_nonce = value
            scope.prepared_nonce = replacement

    @staticmethod
    def _end_reading(scope: RequestScope, exc: BaseException | None = None) -> None:
        reader = scope.reader_cm
        scope.reader_cm, scope.reader = None, None
        if reader is not None:
            if exc is None:
                reader.__exit__(None, None, None)
            else:
                with suppress(_Rollback):
                    reader.__exit__(_Rollback, exc, None)

    @classmethod
    def _commit(cls, scope: RequestScope) -> None:
        cls._end_reading(scope)
        current, actions = scope.current, scope.after_commit
        scope.current, scope.uow, scope.after_commit = None, None, []
        if current is not None:
            current.__exit__(None, None, None)
            scope.uncommitted_nonce = None
        for action in actions:
            action()

    @classmethod
    def _rollback(cls, scope: RequestScope) -> None:
        cls._end_reading(scope, _Rollback())
        current = scope.current
        scope.current, scope.uow, scope.after_commit = None, None, []
        if current is not None:
            scope.prepared_nonce = None  # it was written in the transaction rolled back
            with suppress(_Rollback):
                current.__exit__(_Rollback, _Rollback(), None)
