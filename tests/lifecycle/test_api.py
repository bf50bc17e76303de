"""The lifecycle routes of the REST API: a certificate's successor for its key holder, renewal
job state, and campaigns (create, dry run, items, a key holder's CSR, a deployment report)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from certfleet.app import Platform
from certfleet.x509 import KeyType, generate_private_key
from tests.api.conftest import ApiClient
from tests.conftest import FakeClock
from tests.lifecycle.fleet import issue

DAY = dt.timedelta(days=1)
CAMPAIGNS = "/api/v1/lifecycle/campaigns"


@pytest.fixture
def api(platform: Platform) -> Iterator[ApiClient]:
    client = ApiClient(platform)
    yield client
    client.close()


def test_the_key_holder_fetches_the_successor(api: ApiClient, platform: Platform, clock: FakeClock) -> None:
    record = issue(api.platform, "app.example.test", days=30, team="web").record
    web = api.token("web", "read")
    url = f"/api/v1/certificates/{record.serial}/successor"
    missing = api.get(url, token=web)
    assert missing.status_code == 404 and "no successor yet" in missing.json()["detail"]
    clock.advance(25 * DAY)
    platform.renewal.run_due()
    clock.advance(22 * DAY)
    platform.renewal.run_due()  # renewed twice: the newest is handed out
    body = api.get(url, token=web).json()
    lineage = platform.renewal.lineage(record)
    assert body["lineage"] == [r.serial for r in lineage] and len(lineage) == 3
    assert body["certificate"]["serial"] == lineage[-1].serial
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert cert.public_key() == record.certificate().public_key()
    chain = x509.load_pem_x509_certificates(body["chain_pem"].encode())
    assert chain[0].subject == cert.issuer
    assert body["fullchain_pem"] == body["certificate_pem"] + body["chain_pem"]
    # Another team's token does not learn it exists
    assert api.get(url, token=api.token("db", "read")).status_code == 404
    job = api.get(f"/api/v1/lifecycle/renewals/{lineage[-1].serial}", token=web).json()
    assert job["state"] == "scheduled" and job["serial"] == lineage[-1].serial
    summary = api.get("/api/v1/lifecycle/renewals", token=api.token())
    assert summary.json()["jobs"]["done"] == 2
    assert api.get("/api/v1/lifecycle/renewals", token=web).status_code == 403


def _csr(key_type: KeyType) -> tuple[object, str]:
    key = generate_private_key(key_type)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x.test")]))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def test_campaigns_over_the_api(api: ApiClient) -> None:
    old = issue(api.platform, "legacy.example.test", key_type=KeyType.RSA_2048, team="web").record
    admin = api.token()
    body = {"select": "key=rsa-2048", "to_key_type": "ec-p256"}
    dry = api.post(CAMPAIGNS, token=admin, json={**body, "dry_run": True})
    assert dry.status_code == 200
    assert [(i["serial"], i["action"]) for i in dry.json()["items"]] == [(old.serial, "rekey")]
    created = api.post(CAMPAIGNS, token=admin, json=body)
    assert created.status_code == 201
    campaign = created.json()
    assert created.headers["Location"].endswith(campaign["id"])
    assert campaign["progress"]["awaiting-key"] == 1
    # Each item says what it waits for and since when, as `certfleet rotate status` does
    [waiting] = api.get(f"{CAMPAIGNS}/{campaign['id']}/items", token=admin).json()["items"]
    assert waiting["waiting_for"].startswith("a CSR for a ") and waiting["since"] == campaign["created_at"]
    assert [c["id"] for c in api.get(CAMPAIGNS, token=admin).json()] == [campaign["id"]]
    # The key holder (a web token with issue scope) sends its new key
    holder = api.token("web", "issue", ["*.example.test"])
    item_url = f"{CAMPAIGNS}/{campaign['id']}/items/{old.serial}"
    key, csr = _csr(KeyType.EC_P256)
    assert (
        api.post(f"{item_url}/csr", token=api.token("db", "issue", ["*.test"]), json={"csr": csr}).status_code
        == 404
    )
    narrow = api.token("web", "issue", ["other.example.test"])
    assert api.post(f"{item_url}/csr", token=narrow, json={"csr": csr}).status_code == 403
    issued = api.post(f"{item_url}/csr", token=holder, json={"csr": csr})
    assert issued.status_code == 200, issued.text
    cert = x509.load_pem_x509_certificate(issued.json()["certificate_pem"].encode())
    assert cert.public_key() == key.public_key()  # type: ignore[attr-defined]
    assert api.post(f"{item_url}/csr", token=holder, json={"csr": csr}).status_code == 409
    deployed = api.post(f"{item_url}/deployed", token=holder)
    assert deployed.status_code == 200 and deployed.json()["milestone"] == "deployed"
    items = api.get(f"{CAMPAIGNS}/{campaign['id']}/items", token=admin).json()
    assert [(i["serial"], i["state"]) for i in items["items"]] == [(old.serial, "reissued")]
    assert api.get(f"{CAMPAIGNS}/{campaign['id']}", token=admin).json()["progress"]["reissued"] == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"select": "colour=red"}, 400, "unknown selection field"),
        ({"select": "key=rsa", "to_key_type": "dsa"}, 400, "unknown key type"),
        ({"select": "key=rsa", "revoke_old_after": "soon"}, 400, "bad duration"),
        ({"select": "key=rsa"}, 404, "no managed certificate"),
        ({"select": "key=rsa", "generate_keys": "/tmp"}, 422, None),
    ],
)
def test_bad_campaigns_are_refused_precisely(
    api: ApiClient, body: dict[str, str], status: int, detail: str | None
) -> None:
    response = api.post(CAMPAIGNS, token=api.token(), json=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    if detail:
        assert detail in response.json()["detail"]


def test_campaigns_need_an_admin_token(api: ApiClient) -> None:
    issuer = api.token("web", "issue", ["*.example.test"])
    assert api.post(CAMPAIGNS, token=issuer, json={"select": "key=rsa"}).status_code == 403
    assert api.get(f"{CAMPAIGNS}/nope", token=api.token()).status_code == 404
