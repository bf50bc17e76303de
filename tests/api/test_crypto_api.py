"""``GET /api/v1/crypto/report``: the report's JSON as the CLI prints it, a CycloneDX 1.6 CBOM
with ``?format=cyclonedx``, and a team token limited to its own team (403 for another)."""

from __future__ import annotations

import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from certfleet.app import Platform
from tests.api.conftest import ApiClient
from tests.services.crypto_fleet import mixed_fleet

REPORT = "/api/v1/crypto/report"


def test_the_report_and_the_cbom_over_the_api(api: ApiClient, platform: Platform, tmp_path: Path) -> None:
    fleet = mixed_fleet(platform, tmp_path)
    admin = api.token("ops", "admin")
    answer = api.get(REPORT, token=admin)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    local = platform.crypto.report().to_dict()
    assert document["summary"] == local["summary"]
    assert [c["fingerprint_sha256"] for c in document["certificates"]] == [
        c["fingerprint_sha256"] for c in local["certificates"]
    ]
    bom = api.get(REPORT, token=admin, params={"format": "cyclonedx"})
    assert bom.status_code == 200
    assert bom.headers["content-type"].startswith("application/vnd.cyclonedx+json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.text) is None
    refs = {c["bom-ref"] for c in bom.json()["components"]}
    assert {f"crypto/certificate/{fp}" for fp in fleet.discovered} <= refs


def test_a_team_token_sees_its_own_team_only(api: ApiClient, platform: Platform, tmp_path: Path) -> None:
    fleet = mixed_fleet(platform, tmp_path)
    reader = api.token("pq", "read")
    mine = api.get(REPORT, token=reader).json()
    assert mine["team"] == "pq"
    assert {c["fingerprint_sha256"] for c in mine["certificates"]} == {fleet.ed25519, fleet.ml_dsa_65}
    refused = api.get(REPORT, token=reader, params={"team": "web"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    bom = api.get(REPORT, token=reader, params={"format": "cyclonedx"}).json()
    assert not any(c["name"] == "CN=legacy.test" for c in bom["components"])


def test_bad_input_is_a_precise_problem(api: ApiClient) -> None:
    answer = api.get(REPORT, token=api.token(), params={"format": "xml"})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "format" in json.dumps(answer.json())
    assert api.get(REPORT).status_code == 401
