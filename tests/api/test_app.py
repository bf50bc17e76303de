"""The API application itself: health, the OpenAPI document, and problems for unknown routes."""

from __future__ import annotations

import pytest

from certfleet.app import Platform
from tests.api.conftest import CERTS, ApiClient, assert_problem


def test_healthz_needs_no_token(api: ApiClient) -> None:
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.text == "ok\n"


def test_openapi_documents_the_v1_routes(api: ApiClient) -> None:
    response = api.get("/api/v1/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths[CERTS]) == {"get", "post"}
    assert set(paths[CERTS + "/{serial}"]) == {"get"}
    list_params = {p["name"] for p in paths[CERTS]["get"]["parameters"]}
    assert {"expiring", "status", "issuer", "san", "team", "limit", "cursor"} <= list_params
    post = paths[CERTS]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/IssueRequest")
    assert "application/problem+json" in post["responses"]["403"]["content"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()


def test_unknown_route_and_method_are_problems(api: ApiClient, admin: str) -> None:
    assert_problem(api.get("/api/v1/nothing", token=admin), 404, "Not Found")
    wrong = api.request("DELETE", CERTS, token=admin)
    assert_problem(wrong, 405, "Method Not Allowed")
    assert "POST" in wrong.headers["allow"]


class _Broken:
    def query(self, *_: object) -> None:
        raise RuntimeError("database password is hunter2")


def test_an_unexpected_error_is_a_bare_500_problem(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    client = ApiClient(platform, raise_app_exceptions=False)
    token = client.token("ops", "admin")
    platform.inventory = _Broken()  # type: ignore[assignment]
    try:
        response = client.get(CERTS, token=token)
    finally:
        client.close()

    assert_problem(response, 500, "the server failed to handle this request")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" in caplog.text
