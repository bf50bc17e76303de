"""The test-only fault points: off unless armed, refused without the testing guard, and an
armed ``raise`` fires exactly on its Nth pass."""

from __future__ import annotations

import pytest

from certfleet.errors import ConfigurationError
from certfleet.faults import FAULTS_ENV, GUARD_ENV, FaultInjected, fault_point, parse_plan


def test_unset_plan_is_a_no_op() -> None:
    plan = parse_plan({})
    for _ in range(3):
        plan.reach("issuance.after_signing")
    fault_point("issuance.after_signing")  # this test process arms nothing


def test_an_armed_raise_fires_on_its_nth_pass_only() -> None:
    plan = parse_plan({FAULTS_ENV: "issuance.after_signing=raise@2", GUARD_ENV: "1"})
    plan.reach("issuance.after_signing")
    plan.reach("issuance.after_serial_reserved")  # not armed
    with pytest.raises(FaultInjected, match=r"issuance\.after_signing"):
        plan.reach("issuance.after_signing")
    plan.reach("issuance.after_signing")


def test_without_the_testing_guard_an_armed_point_refuses_instead_of_firing() -> None:
    plan = parse_plan({FAULTS_ENV: "issuance.after_signing=kill"})
    with pytest.raises(ConfigurationError, match=f"needs {GUARD_ENV}=1"):
        plan.reach("issuance.after_signing")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("issuance.nowhere=kill", "unknown fault point"),
        ("issuance.after_signing=explode", "action must be kill or raise"),
        ("issuance.after_signing=kill@0", "positive count"),
    ],
)
def test_a_malformed_plan_is_a_configuration_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_plan({FAULTS_ENV: spec, GUARD_ENV: "1"})
