"""``certfleet.services`` names its public services without importing them (PEP 562): a
command that needs one service (``certfleet scan`` needs discovery) does not load the others,
their domain packages and the ACME protocol through the package's ``__init__`` (issue 11)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import certfleet.services

_FRESH = """
import json, sys
import certfleet.services
before = sorted(n for n in sys.modules if n.startswith("certfleet.services."))
from certfleet.services.discovery import DiscoveryService
after = sorted(n for n in sys.modules if n.startswith(("certfleet.services.", "certfleet.protocols")))
print(json.dumps({"before": before, "after": after}))
"""


def test_importing_the_package_or_one_service_loads_no_other_service() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, check=False, timeout=120
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["before"] == []
    others = {"issuance", "authorities", "inventory", "tokens", "audit", "notifications", "policy", "renewal"}
    assert {f"certfleet.services.{name}" for name in others}.isdisjoint(report["after"]), report["after"]
    assert not any(n.startswith("certfleet.protocols") for n in report["after"]), report["after"]


@pytest.mark.parametrize("name", certfleet.services.__all__)
def test_every_exported_name_is_its_home_modules_object(name: str) -> None:
    exported = getattr(certfleet.services, name)
    home = importlib.import_module(certfleet.services._EXPORTS.home_of(name))

    assert exported is getattr(home, name)
    namespace: dict[str, object] = {}
    exec(f"from certfleet.services import {name} as imported", namespace)
    assert namespace["imported"] is exported
    assert name in dir(certfleet.services)


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchService'"):
        certfleet.services.NoSuchService  # noqa: B018
    from certfleet.services import renewal

    assert renewal.__name__ == "certfleet.services.renewal"


def test_the_ports_module_still_offers_the_agent_unit_of_work() -> None:
    from certfleet.services import _agent_ports, _ports

    assert _ports.AgentUnitOfWork is _agent_ports.AgentUnitOfWork
    assert _ports.AgentUnitOfWorkFactory is _agent_ports.AgentUnitOfWorkFactory
    with pytest.raises(AttributeError):
        _ports.NoSuchPort  # noqa: B018
