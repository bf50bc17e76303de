"""``GET /api/v1/agent/trust-anchors``: every active certfleet root, to an enrolled agent
only (mTLS); the unauthenticated ``ca.pem`` keeps serving the pinned root's hierarchy alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from certfleet.app import Platform
from certfleet.x509 import KeyType, fingerprint_sha256, load_certificates
from tests.agent.test_api import AgentApi, _enrol
from tests.api.conftest import assert_problem


@pytest.fixture
def agent_api(platform: Platform) -> Iterator[AgentApi]:
    client = AgentApi(platform)
    yield client
    client.close()


def test_an_enrolled_agent_reads_every_root_and_nobody_else_does(
    platform: Platform, agent_api: AgentApi
) -> None:
    der = _enrol(platform, agent_api, ["*.example.test"])
    assert_problem(agent_api.call("GET", "/api/v1/agent/trust-anchors"), 401, "client certificate")
    classic = platform.authorities.root().certificate

    # Given a post-quantum hierarchy beside the classic one
    pq, _ = platform.authorities.create_hierarchy("PQ Root", KeyType.ML_DSA_65, actor="test")

    roots = agent_api.call("GET", "/api/v1/agent/trust-anchors", der).json()["roots"]
    assert [r["fingerprint_sha256"] for r in roots] == [
        fingerprint_sha256(classic),
        fingerprint_sha256(pq.certificate),
    ]
    assert [load_certificates(r["certificate_pem"].encode()) for r in roots] == [[classic], [pq.certificate]]
    assert roots[1]["subject"] == pq.certificate.subject.rfc4514_string()
    # The bundle anyone may read (before trusting the server) never carries the second root
    bundle = load_certificates(agent_api.call("GET", "/api/v1/agent/ca.pem").content)
    assert pq.certificate not in bundle and bundle[0] == classic
