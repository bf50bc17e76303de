"""Revoking over REST obeys the token's name patterns and a scope of its own (issue 12), on
SQLite and PostgreSQL.

Given a team "web" whose CI pipeline holds a token for ``*.ci.example.test``, that token
must not be able to revoke the team's production certificates or its agents' identities
(and, with keyCompromise, block their keys everywhere). A refused revocation is a 403
problem with the reason, and records nothing at all."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from certfleet.api import create_api_app
from certfleet.api._peer_certificate import with_client_certificate
from certfleet.app import Platform
from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateRecord, Status
from tests.api.conftest import CERTS, ApiClient, assert_problem
from tests.api.revoke_fleet import CI_PATTERN, Fleet, build_fleet, snapshot


@pytest.fixture
def fleet(platform: Platform) -> Fleet:
    return build_fleet(platform)


def _revoke(
    api: ApiClient, record: CertificateRecord, token: str, reason: str = "keyCompromise"
) -> httpx.Response:
    return api.post(f"{CERTS}/{record.serial}/revoke", token=token, json={"reason": reason})


def _as_agent(platform: Platform, der: bytes, record: CertificateRecord, reason: str) -> httpx.Response:
    app = with_client_certificate(create_api_app(platform), der)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://certfleet.test"
        ) as client:
            return await client.post(
                f"/api/v1/agent/certificates/{record.serial}/revoke", json={"reason": reason}
            )

    return asyncio.run(go())


def _refused_without_change(
    platform: Platform, record: CertificateRecord, call: Any, status: int, detail: str
) -> None:
    before = snapshot(platform)
    assert_problem(call(), status, detail)
    assert snapshot(platform) == before  # no revocation, blocked key, audit entry or event
    assert platform.inventory.find(record.fingerprint_sha256).status is Status.ACTIVE


def test_an_issue_token_no_longer_revokes_even_within_its_patterns(
    api: ApiClient, platform: Platform, fleet: Fleet
) -> None:
    ci_issuer = api.token("web", "issue", [CI_PATTERN])
    for record in (fleet.ci, fleet.prod, fleet.agent_identity):
        _refused_without_change(
            platform,
            record,
            lambda r=record: _revoke(api, r, ci_issuer),
            403,
            "this token has scope issue; revoke is required",
        )


def test_a_revoke_token_may_revoke_only_certificates_all_of_whose_names_match(
    api: ApiClient, platform: Platform, fleet: Fleet
) -> None:
    ci_revoker = api.token("web", "revoke", [CI_PATTERN])
    _refused_without_change(
        platform,
        fleet.prod,
        lambda: _revoke(api, fleet.prod, ci_revoker),
        403,
        "this token may not revoke a certificate for 'www.example.test'",
    )
    _refused_without_change(
        platform,
        fleet.mixed,
        lambda: _revoke(api, fleet.mixed, ci_revoker),
        403,
        "this token may not revoke a certificate for 'api.example.test'",
    )
    done = _revoke(api, fleet.ci, ci_revoker)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["revocation_reason"]) == ("revoked", "keyCompromise")


def test_an_agent_identity_is_revocable_only_by_an_admin_or_that_agent(
    api: ApiClient, platform: Platform, fleet: Fleet, admin: str
) -> None:
    # The agent's host name is under the pattern: the pattern alone must not be enough.
    broad = api.token("web", "revoke", ["**.example.test"])
    _refused_without_change(
        platform,
        fleet.agent_identity,
        lambda: _revoke(api, fleet.agent_identity, broad),
        403,
        "identity of agent 'runner.ci.example.test': only an admin or that agent may revoke it",
    )
    _refused_without_change(
        platform,
        fleet.agent_identity,
        lambda: _as_agent(platform, fleet.other_agent_identity_der, fleet.agent_identity, "keyCompromise"),
        403,
        "only an admin or that agent may revoke it",
    )
    assert _revoke(api, fleet.agent_identity, admin).status_code == 200


def test_an_agent_revokes_its_own_identity_over_mtls(platform: Platform, fleet: Fleet) -> None:
    response = _as_agent(platform, fleet.agent_identity_der, fleet.agent_identity, "keyCompromise")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    revoked = [e for e in platform.audit.entries() if e.action == "certificate.revoked"]
    assert [e.actor for e in revoked] == ["agent:runner.ci.example.test"]
    # And from now on that identity is refused.
    again = _as_agent(platform, fleet.agent_identity_der, fleet.ci, "superseded")
    assert again.status_code == 403


def test_an_admin_token_still_revokes_anything(api: ApiClient, fleet: Fleet, admin: str) -> None:
    for record in (fleet.prod, fleet.mixed, fleet.ci):
        assert _revoke(api, record, admin, "superseded").status_code == 200


def test_a_revoke_token_needs_name_patterns(api: ApiClient) -> None:
    with pytest.raises(InvalidInput, match="revoke scope needs at least one --allow-names pattern"):
        api.token("web", "revoke")
