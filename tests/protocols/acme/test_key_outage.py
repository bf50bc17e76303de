"""A finalize that meets unavailable CA keys (an HSM token removed: the signing seam raises
KeyBackendUnavailable) answers serverInternal with status 503 and leaves the order ready, so
the client's retried finalize succeeds once the keys are back. The real token removal is in
tests/integration/test_hsm.py; here the seam fails as the PKCS#11 backend makes it fail."""

from __future__ import annotations

from typing import Any

import pytest

from certfleet.ca.errors import KeyBackendUnavailable
from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.problems_check import URN


def _token_away(*_args: Any) -> Any:
    raise KeyBackendUnavailable("HSM token 'acme-test' is unavailable: TokenNotPresent")


def test_finalize_without_the_ca_keys_is_503_and_the_order_stays_ready(
    acme: AcmeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = acme.client.new_account()
    names = ["hsm-away.example.test"]
    order_url, order = acme.ready_order(account, names)
    with monkeypatch.context() as away:
        away.setattr("certfleet.ca._authority.sign_certificate", _token_away)
        refused = acme.finalize(account, order, names)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == URN + "serverInternal"
    assert "acme-test" in refused.json()["detail"]
    assert acme.get(account, order_url)["status"] == "ready"
    # When the keys are back, the same order finalizes
    retried = acme.finalize(account, order, names)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "valid"
