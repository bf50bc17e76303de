"""Fault points for crash tests: TEST-ONLY, never set in production.

The fault-tolerance tests (tests/integration/test_faults_*.py) prove that a process killed at
any step of issuance loses no certificate. They arm a point with two environment variables,
read once when this module is first imported::

    CERTFLEET_TESTING=1
    CERTFLEET_TEST_FAULTS="issuance.after_signing=kill@5,issuance.before_commit=raise"

``kill`` is a real ``kill -9`` of the process (SIGKILL: no handler, no flush, no cleanup),
``raise`` an unexpected exception (:class:`FaultInjected`). ``@N`` fires on the Nth time the
point is reached (default the first), so a test can let load build up first. Without
``CERTFLEET_TESTING=1`` the plan is refused: every armed point then raises
:class:`~certfleet.errors.ConfigurationError`, so a stray variable on a real server stops
issuance loudly instead of killing it. Unset (the normal case), :func:`fault_point` is one
dictionary test.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from certfleet.errors import ConfigurationError

__all__ = ["FAULTS_ENV", "GUARD_ENV", "POINTS", "FaultInjected", "FaultPlan", "fault_point", "parse_plan"]

FAULTS_ENV = "CERTFLEET_TEST_FAULTS"
GUARD_ENV = "CERTFLEET_TESTING"

# Where issuance can be interrupted (services/issuance.py and store/_issuance_ledger.py).
POINTS = frozenset(
    {
        "issuance.after_serial_reserved",  # the serial is committed, nothing signed yet
        "issuance.after_signing",  # signed, not yet recorded: only the serial knows of it
        "issuance.before_final_write",  # signed, about to enter the recording transaction
        "issuance.before_commit",  # inside the recording transaction, all rows written
    }
)
_ACTIONS = ("kill", "raise")


class FaultInjected(RuntimeError):
    """An armed ``raise`` fault point: stands for any unexpected failure at that step."""


@dataclass
class _Armed:
    action: str
    fire_at: int
    seen: int = 0


class FaultPlan:
    def __init__(self, armed: Mapping[str, _Armed], refusal: str | None = None) -> None:
        self._armed = dict(armed)
        self._refusal = refusal
        self._lock = threading.Lock()

    def reach(self, point: str) -> None:
        armed = self._armed.get(point)
        if armed is None:
            return
        if self._refusal is not None:
            raise ConfigurationError(self._refusal)
        with self._lock:
            armed.seen += 1
            fire = armed.seen == armed.fire_at
        if not fire:
            return
        if armed.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise FaultInjected(f"fault injected at {point}")


def parse_plan(environ: Mapping[str, str]) -> FaultPlan:
    """The plan ``environ`` arms; an unknown point or action is a configuration error."""
    spec = environ.get(FAULTS_ENV, "").strip()
    if not spec:
        return FaultPlan({})
    armed: dict[str, _Armed] = {}
    for item in spec.split(","):
        point, _, rest = item.strip().partition("=")
        action, _, count = rest.partition("@")
        if point not in POINTS:
            raise ConfigurationError(f"{FAULTS_ENV}: unknown fault point {point!r}")
        if action not in _ACTIONS:
            raise ConfigurationError(f"{FAULTS_ENV}: {point}: action must be kill or raise, not {action!r}")
        if count and not (count.isdigit() and int(count) >= 1):
            raise ConfigurationError(f"{FAULTS_ENV}: {point}: @N needs a positive count, not {count!r}")
        armed[point] = _Armed(action, int(count) if count else 1)
    refusal = None
    if environ.get(GUARD_ENV) != "1":
        refusal = f"{FAULTS_ENV} is for tests only and needs {GUARD_ENV}=1: refusing to run with it"
    return FaultPlan(armed, refusal)


def _load() -> FaultPlan:
    try:
        return parse_plan(os.environ)
    except ConfigurationError as exc:
        detail = exc.detail  # a malformed plan: refuse at every point rather than run unarmed
        return FaultPlan({p: _Armed("raise", 1) for p in POINTS}, detail)


_PLAN = _load()


def fault_point(point: str) -> None:
    """Does nothing unless a test armed ``point`` (see the module docstring)."""
    _PLAN.reach(point)
