"""GET /api/v1/certificates (every CLI filter, keyset pagination) and GET one by serial."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from tests.api.conftest import CERTS, ApiClient, assert_problem
from tests.conftest import FakeClock


def issue(platform: Platform, name: str, *, team: str = "ops", days: int | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = IssuanceRequest("tls-server", key.public_key(), (name,), None, days)
    return platform.issuance.issue(request, actor="test", team=team).record.serial


def import_foreign(platform: Platform, name: str, team: str) -> str:
    """A certificate from another CA, as discovery or an import would record it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere Root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=200))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    outcome = platform.inventory.import_bytes(
        cert.public_bytes(serialization.Encoding.PEM), "foreign.pem", actor="test", team=team
    )
    assert outcome.added == 1
    return format(cert.serial_number, "x")


def mark_revoked(platform: Platform, serial: str) -> None:
    # The revocation service arrives later; the stored status is all the listing reads.
    with platform.database.engine.begin() as conn:
        conn.execute(text("UPDATE certificates SET status = 'revoked' WHERE serial = :s"), {"s": serial})


def serials(api: ApiClient, token: str, **params: object) -> list[str]:
    response = api.get(CERTS, token=token, params=params)
    assert response.status_code == 200, response.text
    return [item["serial"] for item in response.json()["items"]]


@pytest.fixture
def fleet(api: ApiClient) -> dict[str, str]:
    """Five certificates that each filter tells apart."""
    p = api.platform
    return {
        "short": issue(p, "short.example.test", days=10),
        "long": issue(p, "long.example.test", days=200),
        "revoked": issue(p, "revoked.example.test"),
        "other-team": issue(p, "db.example.test", team="data"),
        "foreign": import_foreign(p, "legacy.example.test", team="ops"),
    }


def test_list_without_filters_shows_everything_to_an_admin(
    api: ApiClient, admin: str, fleet: dict[str, str]
) -> None:
    response = api.get(CERTS, token=admin)

    assert response.status_code == 200
    body = response.json()
    assert [i["serial"] for i in body["items"]] == list(fleet.values())  # oldest first
    assert body["next_cursor"] is None
    item = body["items"][0]
    for field in (
        "serial",
        "fingerprint_sha256",
        "subject",
        "sans",
        "issuer",
        "not_before",
        "not_after",
        "status",
        "source",
        "team",
    ):
        assert field in item
    assert item["not_after"].endswith("Z")


def test_filter_expiring(api: ApiClient, admin: str, fleet: dict[str, str]) -> None:
    assert serials(api, admin, expiring=30) == [fleet["short"]]
    assert set(serials(api, admin, expiring=150)) == {fleet["short"], fleet["revoked"], fleet["other-team"]}


def test_filter_status(api: ApiClient, admin: str, fleet: dict[str, str], clock: FakeClock) -> None:
    mark_revoked(api.platform, fleet["revoked"])
    assert serials(api, admin, status="revoked") == [fleet["revoked"]]
    assert fleet["revoked"] not in serials(api, admin, status="active")

    clock.advance(dt.timedelta(days=20))  # the 10-day certificate is now past its notAfter

    assert serials(api, admin, status="expired") == [fleet["short"]]
    assert fleet["short"] not in serials(api, admin, status="active")
    assert api.get(f"{CERTS}/{fleet['short']}", token=admin).json()["status"] == "expired"


def test_filter_issuer_by_dn_substring_and_ca_id(api: ApiClient, admin: str, fleet: dict[str, str]) -> None:
    assert serials(api, admin, issuer="elsewhere") == [fleet["foreign"]]
    ca_id = api.platform.authorities.issuing_authority().issuer.id
    assert fleet["foreign"] not in serials(api, admin, issuer=ca_id)
    assert len(serials(api, admin, issuer=ca_id)) == 4
    assert serials(api, admin, issuer="100%_literal") == []  # LIKE wildcards are literal


def test_filter_san_and_team(api: ApiClient, admin: str, fleet: dict[str, str]) -> None:
    assert serials(api, admin, san="LONG.example.test") == [fleet["long"]]
    assert serials(api, admin, san="example.test") == []  # exact, not a suffix
    assert serials(api, admin, team="data") == [fleet["other-team"]]
    assert serials(api, admin, team="data", san="long.example.test") == []


def test_get_one_by_serial_or_fingerprint(api: ApiClient, admin: str, fleet: dict[str, str]) -> None:
    by_serial = api.get(f"{CERTS}/{fleet['long']}", token=admin)

    assert by_serial.status_code == 200
    record = by_serial.json()
    assert record["sans"] == ["long.example.test"]
    by_fingerprint = api.get(f"{CERTS}/{record['fingerprint_sha256'].upper()}", token=admin)
    assert by_fingerprint.json() == record
    assert_problem(api.get(f"{CERTS}/abcdef0123", token=admin), 404, "no certificate with serial")


@pytest.mark.parametrize(("count", "limit"), [(21, 7), (23, 5)])
def test_keyset_pagination_walks_every_row_once(api: ApiClient, admin: str, count: int, limit: int) -> None:
    issued = [issue(api.platform, f"h{i}.example.test") for i in range(count)]
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = api.get(CERTS, token=admin, params=params).json()
        pages += 1
        assert body["items"], "a cursor never leads to an empty page"
        seen.extend(i["serial"] for i in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == issued  # same order, no duplicate, no gap
    assert pages == -(-count // limit)


def test_pagination_keeps_filters_and_sees_rows_added_between_pages(api: ApiClient, admin: str) -> None:
    for i in range(4):
        issue(api.platform, f"a{i}.example.test", team="data")
        issue(api.platform, f"b{i}.example.test", team="ops")
    first = api.get(CERTS, token=admin, params={"team": "data", "limit": 3}).json()
    late = issue(api.platform, "late.example.test", team="data")  # keyset: appears on a later page

    second = api.get(CERTS, token=admin, params={"team": "data", "limit": 3, "cursor": first["next_cursor"]})

    rest = second.json()
    assert {i["team"] for i in first["items"] + rest["items"]} == {"data"}
    assert len(first["items"]) == 3 and len(rest["items"]) == 2
    assert rest["items"][-1]["serial"] == late
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(b"id:-4").decode(),
        base64.urlsafe_b64encode(b"row:4").decode(),
        base64.urlsafe_b64encode(b"id:99999999999999999999999").decode(),
        "\u00e9\u00e9",
    ],
)
def test_malformed_cursor_is_400(api: ApiClient, admin: str, cursor: str) -> None:
    assert_problem(api.get(CERTS, token=admin, params={"cursor": cursor}), 400, "malformed pagination cursor")


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": 0}, "query.limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "query.limit: Input should be less than or equal to 1000"),
        ({"expiring": -1}, "query.expiring: Input should be greater than or equal to 0"),
        ({"expiring": 10**12}, "query.expiring: Input should be less than or equal to"),
        ({"status": "lost"}, "query.status: Input should be 'active', 'revoked', 'expired' or 'superseded'"),
    ],
)
def test_bad_query_parameters_are_problems(
    api: ApiClient, admin: str, params: dict[str, object], detail: str
) -> None:
    assert_problem(api.get(CERTS, token=admin, params=params), 422, detail)
