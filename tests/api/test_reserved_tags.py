"""Tags that change renewal and deployment (``certfleet-server``, ``certfleet-agent-identity``,
``agent:<host>``) are certfleet's own: a caller of the REST API cannot set them.

The other ways a caller could attach tags were checked: ``certfleet issue`` has no tag option,
``inventory import`` takes none, ACME orders get the fixed tag ``acme`` and agents get their
own ``agent:<host>`` from the server, never from the request."""

from __future__ import annotations

import pytest

from certfleet.app import Platform
from tests.api.conftest import CERTS, ApiClient, assert_problem, make_csr, stored_rows


@pytest.mark.parametrize(
    "tag",
    ["certfleet-server", "certfleet-agent-identity", "agent:web-1", "Agent:web-1", " certfleet-server "],
)
def test_a_reserved_tag_is_refused_and_nothing_is_issued(
    api: ApiClient, admin: str, platform: Platform, tag: str
) -> None:
    response = api.post(
        CERTS, token=admin, json={"csr": make_csr(["svc.example.test"]), "tags": ["web", tag]}
    )

    assert_problem(response, 400, "is reserved")
    assert stored_rows(platform, "certificates") == 0
    assert stored_rows(platform, "serials") == 0


def test_ordinary_tags_and_the_operator_opt_out_are_accepted(api: ApiClient, admin: str) -> None:
    tags = ["web", "agents", "no-auto-renew", "server"]
    response = api.post(CERTS, token=admin, json={"csr": make_csr(["svc.example.test"]), "tags": tags})

    assert response.status_code == 201, response.text
    assert response.json()["certificate"]["tags"] == tags
