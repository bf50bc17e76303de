"""ARI (RFC 9773): certificate identifiers, default and overridden windows, ``replaces``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from acme.client import _renewal_info_path_component
from cryptography import x509

from certfleet.audit import CertificateRef
from certfleet.protocols.acme import AcmeProblem, CertId, cert_id_of, default_window
from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.problems_check import assert_problem, refused_without_change
from tests.protocols.acme.raw import Account


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


def _issue(acme: AcmeHarness, account: Account, name: str) -> x509.Certificate:
    _, order = acme.ready_order(account, [name])
    done = acme.finalize(account, order, [name])
    assert done.status_code == 200, done.text
    return x509.load_pem_x509_certificates(
        acme.client.post_as_get(account, done.json()["certificate"]).content
    )[0]


def _window(acme: AcmeHarness, cert: x509.Certificate) -> tuple[dt.datetime, dt.datetime, Any]:
    response = acme.client.http.get(f"{acme.directory['renewalInfo']}/{cert_id_of(cert)}")
    assert response.status_code == 200, response.text
    window = response.json()["suggestedWindow"]
    parse = dt.datetime.fromisoformat
    return parse(window["start"]), parse(window["end"]), response


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF00, 2**159 - 1, 2**127 + 5])
def test_cert_id_round_trips_and_matches_the_acme_library(serial: int) -> None:
    cert_id = CertId(b"\x01\x02\x03", serial)
    assert CertId.parse(str(cert_id)) == cert_id


def test_cert_id_of_an_issued_certificate_matches_certbot(acme: AcmeHarness, account: Account) -> None:
    cert = _issue(acme, account, "id.ari.example.test")
    assert str(cert_id_of(cert)) == _renewal_info_path_component(cert)


@pytest.mark.parametrize("text", ["nodot", "a.b.c", "AQ.gA", "AQ.AAE", "AQ=.AQ", ".AQ", "AQ."])
def test_malformed_cert_ids(text: str) -> None:
    with pytest.raises(AcmeProblem) as caught:
        CertId.parse(text)
    assert caught.value.kind == "malformed"


def test_default_window_is_the_start_of_the_last_third() -> None:
    nb = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    window = default_window(nb, nb + dt.timedelta(days=90))
    assert window.start == nb + dt.timedelta(days=60)
    assert window.end == nb + dt.timedelta(days=75)


def test_renewal_info_for_an_issued_certificate(acme: AcmeHarness, account: Account) -> None:
    cert = _issue(acme, account, "window.ari.example.test")
    start, end, response = _window(acme, cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert start == cert.not_valid_after_utc - lifetime / 3
    assert end - start == lifetime / 6
    assert response.headers["Retry-After"].isdigit()


def test_renew_now_moves_the_window_to_now(acme: AcmeHarness, account: Account) -> None:
    cert = _issue(acme, account, "now.ari.example.test")
    [outcome] = acme.platform.acme.renew_now([format(cert.serial_number, "x")], actor="test")
    assert outcome.ok, outcome.detail
    start, end, _ = _window(acme, cert)
    assert end <= acme.clock.now() and start < end
    # the audit entry names the certificate by serial and issuer (RFC 5280 4.1.2.2)
    [entry] = [e for e in acme.platform.audit.entries() if e.action == "acme.renewal.override"]
    assert entry.subject == CertificateRef.of(cert).subject


def test_renew_now_by_selector_reports_each_certificate(acme: AcmeHarness, account: Account) -> None:
    from certfleet.inventory import CertificateQuery

    cert = _issue(acme, account, "selector.ari.example.test")
    outcomes = acme.platform.acme.renew_now_matching(
        CertificateQuery(san="selector.ari.example.test"), actor="t"
    )
    assert [o.serial for o in outcomes] == [format(cert.serial_number, "x")]
    bad = acme.platform.acme.renew_now(["abc123", format(cert.serial_number, "x")], actor="t")
    assert [o.ok for o in bad] == [False, True]


def test_revoked_certificate_has_a_past_window(acme: AcmeHarness, account: Account) -> None:
    cert = _issue(acme, account, "revoked.ari.example.test")
    acme.platform.revocation.revoke(format(cert.serial_number, "x"), "superseded", actor="test")
    _, end, _ = _window(acme, cert)
    assert end < acme.clock.now()


def test_unknown_and_malformed_cert_ids(acme: AcmeHarness) -> None:
    unknown = acme.client.http.get(f"{acme.directory['renewalInfo']}/{CertId(b'nope', 12345)}")
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith(":malformed")
    bad = acme.client.http.get(f"{acme.directory['renewalInfo']}/not-a-cert-id")
    assert bad.status_code == 400


def test_replaces_names_a_certificate_of_this_account(acme: AcmeHarness, account: Account) -> None:
    name = "replace.ari.example.test"
    cert = _issue(acme, account, name)
    cert_id = str(cert_id_of(cert))
    response = acme.client.new_order(account, [name], replaces=cert_id)
    assert response.status_code == 201, response.text
    assert response.json()["replaces"] == cert_id
    refused_without_change(
        acme, lambda: acme.client.new_order(account, [name], replaces=cert_id), "alreadyReplaced", 409
    )
    stranger = acme.client.new_account()
    refused_without_change(
        acme, lambda: acme.client.new_order(stranger, [name], replaces=cert_id), "unauthorized", 403
    )
    refused_without_change(
        acme,
        lambda: acme.client.new_order(account, ["other.ari.example.test"], replaces=cert_id),
        "malformed",
        400,
    )
    assert_problem(acme.client.new_order(account, [name], replaces="garbage"), "malformed", 400)
