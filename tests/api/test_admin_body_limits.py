"""Every POST of the operator endpoints (policies, tokens, notification channels, agent join
tokens) answers a body over ``server.max_body_bytes`` with 413 problem+json before reading
it, and stores nothing."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient, assert_problem, stored_rows


@pytest.mark.parametrize(
    ("path", "table"),
    [
        ("/api/v1/policies", "policy_versions"),
        ("/api/v1/policies/test", "policy_versions"),
        ("/api/v1/tokens", "api_tokens"),
        ("/api/v1/notifications/channels", "notification_channels"),
        ("/api/v1/agents/join-tokens", "agent_join_tokens"),
    ],
)
def test_a_body_over_the_server_limit_is_413_unread_and_stores_nothing(
    api: ApiClient, admin: str, path: str, table: str
) -> None:
    before = stored_rows(api.platform, table)
    oversized = b'{"document": "' + b"x" * (1024 * 1024) + b'"}'

    response = api.post(path, token=admin, content=oversized, headers={"Content-Type": "application/json"})

    assert_problem(response, 413, "exceeds the limit of 1048576 bytes")
    assert stored_rows(api.platform, table) == before
