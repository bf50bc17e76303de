"""The ``spiffe:`` section of agent.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.agent.config import SpiffeEndpoint, parse_config
from certfleet.agent.errors import AgentConfigError


def test_a_spiffe_only_agent_needs_only_the_trust_domain() -> None:
    config = parse_config({"spiffe": {"trust_domain": "example.org"}}, "agent.yaml")
    assert config.spiffe == SpiffeEndpoint("example.org", Path("/run/certfleet/agent.sock"), ("unix",))
    assert config.certificates == ()


def test_the_socket_and_attestors_are_read() -> None:
    config = parse_config(
        {"spiffe": {"trust_domain": "spiffe://prod.example", "socket": "/var/run/wl/api.sock",
                    "attestors": ["unix"]}},
        "agent.yaml",
    )  # fmt: skip
    assert config.spiffe == SpiffeEndpoint("prod.example", Path("/var/run/wl/api.sock"), ("unix",))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({}, "agent.yaml: spiffe.trust_domain: must be a non-empty string"),
        ({"trust_domain": "Example.ORG"}, "spiffe.trust_domain: trust domain 'Example.ORG' has characters"),
        ({"trust_domain": "spiffe://example.org/ns/app"}, "names a workload, not a trust domain"),
        (
            {"trust_domain": "example.org", "socket": "agent.sock"},
            "spiffe.socket: 'agent.sock' must be an absolute",
        ),
        ({"trust_domain": "example.org", "attestors": ["k8s"]}, "spiffe.attestors: must be a list of: unix"),
        ({"trust_domain": "example.org", "attestors": []}, "spiffe.attestors: must be a list of: unix"),
        ({"trust_domain": "example.org", "port": 8081}, "spiffe: unknown key 'port'"),
    ],
)
def test_a_bad_spiffe_section_is_refused_with_its_place(section: dict[str, object], message: str) -> None:
    with pytest.raises(AgentConfigError) as raised:
        parse_config({"spiffe": section}, "agent.yaml")
    assert message in raised.value.detail


def test_without_a_spiffe_section_certificates_are_still_required() -> None:
    with pytest.raises(AgentConfigError, match="certificates: must be a non-empty list"):
        parse_config({"allowed_dirs": ["/etc/ssl"]}, "agent.yaml")
