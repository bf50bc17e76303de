"""Background validation: a challenge answered by the client is checked on a worker thread
while it shows ``processing``; the result moves the challenge, its authorization and every
order waiting on it, in one transaction (RFC 8555 section 7.5.1)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from certfleet.clock import Clock
from certfleet.protocols.acme._ports import AcmeUnitOfWork, AcmeUnitOfWorkFactory
from certfleet.protocols.acme.authorizations import Authorization, AuthzStatus, Challenge, ChallengeStatus
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.challenges import ChallengeValidator, key_authorization
from certfleet.protocols.acme.orders import OrderStatus
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.resolver import Question

__all__ = ["ValidationRunner", "ValidationTarget", "update_orders_for"]

_log = logging.getLogger("certfleet.acme.validation")


def update_orders_for(
    uow: AcmeUnitOfWork,
    authz_id: str,
    now: dt.datetime,
    error: AcmeProblem | None,
    settled: AuthzStatus | None = None,
) -> None:
    """Move each pending order of this authorization to ready (all its authorizations valid)
    or invalid (one failed). The order row is locked first so two authorizations finishing
    at once on PostgreSQL cannot both see the other still pending. ``settled``: the status
    this transaction has just given the authorization (not read again)."""
    repo = uow.acme
    for order_id in repo.orders.ids_for_authorization(authz_id):
        order = repo.orders.get(order_id, lock=True)
        if order is None or order.status is not OrderStatus.PENDING:
            continue
        statuses = []
        for other in order.authz_ids:
            if other == authz_id and settled is not None:
                statuses.append(settled)
                continue
            authz = repo.authorizations.get(other)
            statuses.append(authz.effective_status(now) if authz else AuthzStatus.INVALID)
        if all(s is AuthzStatus.VALID for s in statuses):
            repo.orders.transition(order.id, OrderStatus.READY, expected=(OrderStatus.PENDING,))
        elif any(s in (AuthzStatus.INVALID, AuthzStatus.DEACTIVATED, AuthzStatus.EXPIRED) for s in statuses):
            body = (
                error.to_json()
                if error
                else {
                    "type": "urn:ietf:params:acme:error:unauthorized",
                    "detail": "an authorization failed",
                    "status": 403,
                }
            )
            repo.orders.transition(order.id, OrderStatus.INVALID, expected=(OrderStatus.PENDING,), error=body)


@dataclass(frozen=True)
class ValidationTarget:
    """What the request that answered a challenge has already read: the authorization (its
    identifier and the challenge's token never change) and the thumbprint of the account key
    that signed the answer. Given to :meth:`ValidationRunner.submit`, it spares the worker a
    transaction that would read the same rows again."""

    authz: Authorization
    thumbprint: str


class ValidationRunner:
    """Runs validations on a small thread pool, started on first use so that commands which
    only open the platform never start threads."""

    def __init__(
        self,
        uow: AcmeUnitOfWorkFactory,
        clock: Clock,
        validators: Mapping[str, ChallengeValidator],
        caa: CaaChecker,
        *,
        workers: int,
        authz_lifetime: dt.timedelta,
        answer_wait_seconds: float = 1.0,
        together: Callable[[Sequence[Question]], AbstractContextManager[None]] | None = None,
    ) -> None:
        """``together``: asks a validation's DNS questions at once and answers its look-ups
        from them (``DnsResolver.together``); without it each look-up is made alone."""
        self._uow = uow
        self._clock = clock
        self._validators = validators
        self._caa = caa
        self._workers = workers
        self._authz_lifetime = authz_lifetime
        self._together = together
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.on_done: Callable[[str], None] | None = None  # tests observe completions
        # How long a challenge's answer waits for its validation (see
        # ``OrderEndpoints._validated``): long enough for a validation over a local network
        # or a nearby resolver (tens of milliseconds), short enough that a request thread is
        # never held for a slow one.
        self.answer_wait_seconds = answer_wait_seconds

    def submit(
        self, challenge_id: str, account_url: str, target: ValidationTarget | None = None
    ) -> Future[Challenge | None]:
        """Validate on a worker thread; the future's result is the challenge as its result was
        committed (``None`` when the challenge was gone)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="acme-validate")
            return self._executor.submit(self._run, challenge_id, account_url, target)

    def finished(self, validation: Future[Challenge | None]) -> bool:
        """Wait up to ``answer_wait_seconds`` for a submitted validation; true when it has
        finished (its result committed)."""
        try:
            validation.result(timeout=self.answer_wait_seconds)
        except (TimeoutError, CancelledError):  # slow, or the runner is closing
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None

    def _run(self, challenge_id: str, account_url: str, target: ValidationTarget | None) -> Challenge | None:
        try:
            return self.validate_now(challenge_id, account_url, target)
        except Exception as exc:  # noqa: BLE001 - a job's outermost handler: log, never lose the thread
            _log.error("validation of challenge %s failed: %s: %s", challenge_id, type(exc).__name__, exc)
            return self._finish(challenge_id, AcmeProblem("serverInternal", "validation failed unexpectedly"))
        finally:
            if self.on_done is not None:
                self.on_done(challenge_id)

    def validate_now(
        self, challenge_id: str, account_url: str, target: ValidationTarget | None = None
    ) -> Challenge | None:
        """Validate and commit the result; the challenge as committed (``None`` when the
        challenge or its account is gone). Without a ``target``, what to validate is read in
        a transaction of its own."""
        if target is None:
            with self._uow(read_only=True) as uow:
                authz = uow.acme.authorizations.get_by_challenge(challenge_id)
                account = uow.acme.accounts.get(authz.account_id) if authz else None
            if authz is None or account is None:
                return None
            target = ValidationTarget(authz, account.thumbprint)
        authz = target.authz
        challenge = authz.challenge(challenge_id)
        assert challenge is not None
        error: AcmeProblem | None = None
        identifier = authz.identifier
        try:
            validator = self._validators[challenge.type]
            questions = list(validator.questions(identifier))
            if identifier.type == "dns":
                questions += self._caa.questions(identifier.value)
            with self._together(questions) if self._together else nullcontext():
                validator.validate(
                    identifier, challenge.token, key_authorization(challenge.token, target.thumbprint)
                )
                if identifier.type == "dns":
                    # RFC 8659 and CA/B Forum BR 3.2.2.8: CAA is checked as part of validation.
                    self._caa.check(
                        identifier.value,
                        wildcard=authz.wildcard,
                        account_uri=account_url,
                        method=challenge.type,
                    )
        except AcmeProblem as problem:
            error = problem
        return self._finish(challenge_id, error, authz)

    def fail(self, challenge_id: str, error: AcmeProblem) -> None:
        """Fail a challenge whose validation cannot finish (its worker died: see
        ``protocols.acme.recovery``), with its authorization and the orders waiting on it."""
        self._finish(challenge_id, error)

    def _finish(
        self, challenge_id: str, error: AcmeProblem | None, authz: Authorization | None = None
    ) -> Challenge | None:
        """Record the result; the challenge as recorded."""
        now = self._clock.now()
        with self._uow() as uow:
            authz = authz or uow.acme.authorizations.get_by_challenge(challenge_id)
            challenge = authz.challenge(challenge_id) if authz is not None else None
            if authz is None or challenge is None:
                return None
            if error is not None and error.identifier is None:
                error.identifier = authz.identifier.to_json()
            status = ChallengeStatus.INVALID if error else ChallengeStatus.VALID
            body = error.to_json() if error else None
            uow.acme.authorizations.finish_challenge(challenge_id, status, now, body)
            if error is None:
                expires_at = now + self._authz_lifetime
                settled = replace(authz, status=AuthzStatus.VALID, expires_at=expires_at).effective_status(
                    now
                )
                moved = uow.acme.authorizations.set_status(
                    authz.id,
                    AuthzStatus.VALID,
                    expected=(AuthzStatus.PENDING,),
                    validated_at=now,
                    expires_at=expires_at,
                    caa_checked_at=now if authz.identifier.type == "dns" else None,
                )
            else:
                settled = AuthzStatus.INVALID
                moved = uow.acme.authorizations.set_status(authz.id, settled, expected=(AuthzStatus.PENDING,))
            update_orders_for(uow, authz.id, now, error, settled if moved else None)
        # What finish_challenge wrote (the timestamps are shown to the second).
        return replace(challenge, status=status, validated_at=None if error else now, error=body)
