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

A request that fails rolls its transaction back, including the nonce it consumed; the
server then burns that nonce in the transaction that issues the problem's ``Replay-Nonce``
(:attr:`RequestScope.uncommitted_nonce`), so a nonce is single use whatever the outcome.

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
    transactions: int = 0
    # The request was a POST-as-GET (RFC 8555 section 6.3): a read.
    post_as_get: bool = False


class RequestTransactions:
    def __init__(self, factory: AcmeUnitOfWorkFactory) -> None:
        self._factory = factory
        self._local = threading.local()

    def _scope(self) -> RequestScope | None:
        scope: RequestScope | None = getattr(self._local, "scope", None)
        return scope

    @contextmanager
    def __call__(self, *, read_only: bool = False) -> Iterator[AcmeUnitOfWork]:
        """Within a request, its transaction (``read_only`` is then moot: the request
        writes its nonces); outside one, a transaction of its own."""
        scope = self._scope()
        if scope is None:
            with self._factory(read_only=read_only) as uow:
                yield uow
            return
        if scope.uow is None:
            scope.current = self._factory()
            scope.uow = scope.current.__enter__()
            scope.transactions += 1
        yield scope.uow

    @contextmanager
    def request(self) -> Iterator[RequestScope]:
        """The request's scope: what is still open when the block ends normally is
        committed; an exception rolls it back and propagates."""
        if self._scope() is not None:
            raise RuntimeError("an ACME request scope is already open on this thread")
        scope = RequestScope()
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
        """Note that the request is a POST-as-GET."""
        scope = self._scope()
        if scope is not None:
            scope.post_as_get = True

    def consuming_nonce(self, value: str) -> None:
        """Note a nonce consumed in the request's open transaction (see the module doc)."""
        scope = self._scope()
        if scope is not None and scope.uow is not None:
            scope.uncommitted_nonce = value

    @staticmethod
    def _commit(scope: RequestScope) -> None:
        current, actions = scope.current, scope.after_commit
        scope.current, scope.uow, scope.after_commit = None, None, []
        if current is not None:
            current.__exit__(None, None, None)
            scope.uncommitted_nonce = None
        for action in actions:
            action()

    @staticmethod
    def _rollback(scope: RequestScope) -> None:
        current = scope.current
        scope.current, scope.uow, scope.after_commit = None, None, []
        if current is not None:
            with suppress(_Rollback):
                current.__exit__(_Rollback, _Rollback(), None)
