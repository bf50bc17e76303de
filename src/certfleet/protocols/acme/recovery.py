"""Work a dead process left ``processing`` (RFC 8555 sections 7.1.6 and 7.5.1).

Finalize moves an order to ``processing`` before it asks the CA, and a challenge shows
``processing`` while a worker thread validates it. If the process dies in between (``kill
-9``, a lost node), nothing else would ever move them: clients poll a ``processing`` order or
challenge until they give up. Whichever node runs the ``acme.stalled`` job resolves them once
they have been processing longer than ``[acme] stalled_after_seconds``, far longer than a live
finalize or validation takes:

- an order becomes ``invalid`` with a ``serverInternal`` error saying why. It cannot become
  ``valid``: whether the CA signed for it is not known here, and a certificate it did sign is
  in the inventory or its serial is reserved, so revocable either way. The client orders again.
- a challenge fails the same way, and with it its authorization and the orders waiting on it
  (as any failed validation does); the client's next order gets fresh challenges.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from certfleet.clock import Clock
from certfleet.protocols.acme._ports import AcmeUnitOfWorkFactory
from certfleet.protocols.acme.orders import OrderStatus
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.validation import ValidationRunner

__all__ = ["StalledWork", "StalledWorkOutcome"]

_log = logging.getLogger("certfleet.acme.recovery")

ORDER_DETAIL = "finalization was interrupted by a server stop; place a new order"
CHALLENGE_DETAIL = "validation was interrupted by a server stop; place a new order to try again"


@dataclass(frozen=True)
class StalledWorkOutcome:
    orders: tuple[str, ...]
    challenges: tuple[str, ...]


class StalledWork:
    def __init__(
        self,
        uow: AcmeUnitOfWorkFactory,
        clock: Clock,
        validation: ValidationRunner,
        stalled_after: dt.timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._validation = validation
        self._stalled_after = stalled_after

    def resolve(self) -> StalledWorkOutcome:
        before = self._clock.now() - self._stalled_after
        error = AcmeProblem("serverInternal", ORDER_DETAIL).to_json()
        resolved: list[str] = []
        with self._uow() as uow:
            for order_id in uow.acme.orders.stalled(before):
                # Conditional: an order that a live finalize completed meanwhile stays valid.
                if uow.acme.orders.transition(
                    order_id, OrderStatus.INVALID, expected=(OrderStatus.PROCESSING,), error=error
                ):
                    resolved.append(order_id)
        with self._uow(read_only=True) as uow:
            challenges = tuple(uow.acme.authorizations.stalled_challenges(before))
        for challenge_id in challenges:
            self._validation.fail(challenge_id, AcmeProblem("serverInternal", CHALLENGE_DETAIL))
        for order_id in resolved:
            _log.warning("order %s was left processing: now invalid (%s)", order_id, ORDER_DETAIL)
        for challenge_id in challenges:
            _log.warning("challenge %s was left processing: now invalid", challenge_id)
        return StalledWorkOutcome(tuple(resolved), challenges)
