"""The host agent: enrols with a one-time token, keeps its host's certificates current,
deploys them atomically, reloads the service, verifies it and rolls back on failure.

It runs on the hosts, not on the server: it talks to certfleet only over its HTTPS API (and
to external ACME CAs), never to the database.
"""

from __future__ import annotations

from certfleet.agent.config import AgentConfig, CertificateSpec, load_config, parse_config
from certfleet.agent.enrollment import enroll, parse_fingerprint
from certfleet.agent.runner import Outcome, Runner
from certfleet.agent.state import DEFAULT_STATE_DIR, AgentState

__all__ = [
    "DEFAULT_STATE_DIR",
    "AgentConfig",
    "AgentState",
    "CertificateSpec",
    "Outcome",
    "Runner",
    "enroll",
    "load_config",
    "parse_config",
    "parse_fingerprint",
]
