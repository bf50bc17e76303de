"""Audit entries name a certificate by issuer and serial (RFC 5280 4.1.2.2: a serial is
unique per issuer only), `audit list` and the dashboard filter by either, and a refused
request never attaches an entry to another team's certificate."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certfleet.app import Platform
from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import IssuanceRequest
from certfleet.store._web import WebQueries
from tests.api.conftest import CERTS, ApiClient
from tests.conftest import Cli

FOREIGN_ISSUER = "CN=Foreign Issuing CA,O=Elsewhere"


def _foreign_certificate(serial_number: int) -> x509.Certificate:
    """A certificate another CA issued with the same serial number as one of ours."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.elsewhere.test")]))
        .issuer_name(x509.Name.from_rfc4514_string(FOREIGN_ISSUER))
        .public_key(key.public_key())
        .serial_number(serial_number)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("shop.elsewhere.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _issue(platform: Platform, name: str, team: str | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    request = IssuanceRequest("tls-server", key.public_key(), (name,), name, 30)
    return platform.issuance.issue(request, actor="test", team=team).issued.certificate


def test_entries_name_issuer_and_serial_and_filter_by_either(platform: Platform, cli: Cli) -> None:
    ours = _issue(platform, "www.example.test")
    serial = format(ours.serial_number, "x")
    issuer = ours.issuer.rfc4514_string()
    foreign = _foreign_certificate(ours.serial_number)
    outcome = platform.inventory.import_bytes(foreign.public_bytes(Encoding.PEM), "foreign.pem", actor="test")
    assert outcome.added == 1
    platform.revocation.revoke(serial, "superseded", actor="test")
    ca_id = next(ca.id for ca in platform.authorities.hierarchy() if ca.role == "intermediate")

    about = {e.action: e.subject for e in platform.audit.entries() if e.action.startswith("certificate.")}
    assert about["certificate.issued"] == f"cert:{serial}@{issuer}"
    assert about["certificate.revoked"] == f"cert:{serial}@{issuer}"
    assert about["certificate.imported"] == f"cert:{serial}@{FOREIGN_ISSUER}"

    def listed(*args: str) -> list[tuple[str, str]]:
        result = cli("audit", "list", "--format", "json", *args)
        assert result.exit_code == 0, result.stderr
        return [(e["action"], e["subject"]) for e in json.loads(result.stdout)]

    ours_subject, foreign_subject = f"cert:{serial}@{issuer}", f"cert:{serial}@{FOREIGN_ISSUER}"
    assert listed("--serial", serial, "--issuer", ca_id) == [
        ("certificate.issued", ours_subject),
        ("certificate.revoked", ours_subject),
    ]
    assert listed("--issuer", FOREIGN_ISSUER) == [("certificate.imported", foreign_subject)]
    assert [a for a, _ in listed("--serial", serial.upper())] == [
        "certificate.issued",
        "certificate.imported",
        "certificate.revoked",
    ]
    bad = cli("audit", "list", "--serial", "not-hex")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "bad serial" in bad.stderr

    queries = WebQueries(platform.database)
    assert [r.action for r in queries.audit_for_certificate(serial, FOREIGN_ISSUER, 50)] == [
        "certificate.imported"
    ]
    assert [r.action for r in queries.audit_for_certificate(serial, issuer, 50)] == [
        "certificate.revoked",
        "certificate.issued",
    ]
    page = queries.audit_page(before_seq=None, limit=10, serial=serial, issuer=FOREIGN_ISSUER)
    assert [r.subject for r in page] == [foreign_subject]
    assert [r.subject for r in queries.audit_page(before_seq=None, limit=10, issuer=issuer)] == [
        ours_subject,
        ours_subject,
    ]


def test_old_serial_only_entries_stay_verifiable_and_listed(platform: Platform, cli: Cli) -> None:
    ours = _issue(platform, "www.example.test")
    serial = format(ours.serial_number, "x")
    with platform.store.unit_of_work() as uow:  # an entry as written before subjects named issuers
        AuditLog(uow.audit, platform.clock).record("cli", "certificate.revoked", serial, {"reason": "old"})
    _issue(platform, "api.example.test")

    assert cli("audit", "verify").exit_code == 0
    listed = json.loads(cli("audit", "list", "--format", "json", "--serial", serial).stdout)
    assert [e["subject"] for e in listed] == [CertificateRef.of(ours).subject, serial]
    # Unambiguous (one certificate has this serial): the certificate page still shows it.
    page = WebQueries(platform.database).audit_for_certificate(serial, ours.issuer.rfc4514_string(), 50)
    assert [r.subject for r in page] == [serial, CertificateRef.of(ours).subject]


@pytest.fixture
def api(platform: Platform) -> Iterator[ApiClient]:
    client = ApiClient(platform)
    yield client
    client.close()


def test_a_refused_request_leaves_another_teams_certificate_history_unchanged(api: ApiClient) -> None:
    # Given team A's certificate, and its history as the dashboard shows it
    team_a = api.token("a", "issue", ["*.a.test"])
    team_b = api.token("b", "issue", ["*.b.test"])
    team_b_revoker = api.token("b", "revoke", ["*.b.test"])
    issued = api.post(CERTS, token=team_a, json={"key_type": "ec-p256", "sans": ["www.a.test"]})
    assert issued.status_code == 201, issued.text
    record = issued.json()["certificate"]
    serial, issuer = record["serial"], record["issuer"]
    queries = WebQueries(api.platform.database)
    overview_before = [r.seq for r in queries.recent_audit("a", 50)]
    page_before = [r.seq for r in queries.audit_for_certificate(serial, issuer, 50)]
    last_seq = max(e.seq for e in api.platform.audit.entries())

    # When team B asks for names equal to that serial, and tries to revoke it
    refused = api.post(CERTS, token=team_b, json={"key_type": "ec-p256", "sans": [serial]})
    assert 400 <= refused.status_code < 500, refused.text
    revoke = api.post(f"{CERTS}/{serial}/revoke", token=team_b_revoker, json={"reason": "keyCompromise"})
    assert revoke.status_code == 404, revoke.text

    # Then the refusal is recorded on team B's token, and nothing attaches to A's certificate
    new = [e for e in api.platform.audit.entries() if e.seq > last_seq and e.action != "token.created"]
    assert [e.action for e in new] == ["certificate.refused"]
    assert new[0].subject.startswith("token:") and new[0].details["names"] == [serial]
    assert [r.seq for r in queries.recent_audit("a", 50)] == overview_before
    assert [r.seq for r in queries.audit_for_certificate(serial, issuer, 50)] == page_before
    assert [r.seq for r in queries.audit_page(before_seq=None, limit=50, serial=serial)] == page_before
    assert api.get(f"{CERTS}/{serial}", token=team_a).json()["status"] == "active"
