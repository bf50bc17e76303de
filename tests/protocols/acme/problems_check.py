"""Assertions shared by the negative tests: an exact problem document, a fresh usable nonce,
and no change of stored state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from acme import messages

from tests.protocols.acme.conftest import AcmeHarness

URN = "urn:ietf:params:acme:error:"


def assert_problem(
    response: httpx.Response, kind: str, status: int, *, sent_nonce: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == URN + kind, body
    assert body["status"] == status
    assert body["detail"]
    idents = [sub.get("identifier", {}).get("type") for sub in body.get("subproblems", [])]
    if all(t in ("dns", "ip") for t in idents):  # the acme library knows no other identifier type
        error = messages.Error.from_json(body)
        assert error.typ == URN + kind
    nonce = response.headers.get("Replay-Nonce")
    assert nonce, "every error carries a fresh Replay-Nonce"
    if sent_nonce is not None:
        assert nonce != sent_nonce
    return body


def refused_without_change(
    harness: AcmeHarness, send: Callable[[], httpx.Response], kind: str, status: int
) -> httpx.Response:
    """Send a bad request; assert its problem and that no stored state changed."""
    before = harness.snapshot()
    response = send()
    assert_problem(response, kind, status)
    assert harness.snapshot() == before, "a refused request changed stored state"
    return response
