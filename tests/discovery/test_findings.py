from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.discovery import (
    SEVERITY,
    CertificatePool,
    ChainAnalyzer,
    Endpoint,
    EndpointOutcome,
    EvaluationPolicy,
    FindingCode,
    HstsCheck,
    KeyUse,
    NetStatus,
    RedirectCheck,
    Severity,
    TlsObservation,
    endpoint_findings,
    hostname_matches,
    key_reuse_findings,
)
from certfleet.discovery.findings import CertificateVerdicts, certificate_findings
from certfleet.discovery.trust import fingerprint
from certfleet.errors import InvalidInput
from tests.discovery.pki import Pki, rsa_key


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def codes(findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.code.value for f in findings}


def test_every_code_has_one_fixed_severity() -> None:
    assert set(SEVERITY) == set(FindingCode)
    assert SEVERITY[FindingCode.EXPIRED] is Severity.CRITICAL
    assert Severity.parse("HIGH").at_least(Severity.MEDIUM)
    assert not Severity.LOW.at_least(Severity.MEDIUM)
    with pytest.raises(InvalidInput, match="unknown severity"):
        Severity.parse("urgent")
    with pytest.raises(InvalidInput, match="unknown finding code"):
        FindingCode.parse("bad-vibes")


def test_certificate_findings(pki: Pki, tmp_path: Path) -> None:
    policy = EvaluationPolicy(pki.now)
    now = pki.now
    cases = {
        "clean": (pki.leaf(["a.test"]).cert, set()),
        "expired": (
            pki.leaf(
                ["a.test"], not_before=now - dt.timedelta(days=9), not_after=now - dt.timedelta(seconds=1)
            ).cert,
            {"expired"},
        ),
        "expiring": (
            pki.leaf(["a.test"], not_before=now, not_after=now + dt.timedelta(days=29)).cert,
            {"expiring"},
        ),
        "long": (pki.leaf(["a.test"], days=399).cert, {"long-validity"}),
        "398 days is allowed": (pki.leaf(["a.test"], days=398).cert, set()),
        "rsa-1024": (pki.leaf(["a.test"], key=rsa_key(1024)).cert, {"weak-key"}),
        "rsa-2048": (pki.leaf(["a.test"], key=rsa_key(2048)).cert, set()),
        "p-224": (pki.leaf(["a.test"], key=ec.generate_private_key(ec.SECP224R1())).cert, {"weak-key"}),
        "sha1": (pki.sha1_leaf(["a.test"], tmp_path).cert, {"weak-signature"}),
    }
    got = {name: codes(certificate_findings(cert, policy, location="x")) for name, (cert, _) in cases.items()}
    assert got == {name: expected for name, (_, expected) in cases.items()}
    # A CA certificate is not held to the 398-day rule for subscribers.
    assert codes(certificate_findings(pki.root.cert, policy, location="x", self_signed=True)) == set()


def test_expiring_window_is_configurable(pki: Pki) -> None:
    cert = pki.leaf(["a.test"], not_before=pki.now, not_after=pki.now + dt.timedelta(days=45)).cert
    assert codes(certificate_findings(cert, EvaluationPolicy(pki.now), location="x")) == set()
    wide = EvaluationPolicy(pki.now, dt.timedelta(days=60))
    assert codes(certificate_findings(cert, wide, location="x")) == {"expiring"}
    with pytest.raises(InvalidInput):
        EvaluationPolicy(pki.now, dt.timedelta(days=-1))


@pytest.mark.parametrize(
    ("sans", "name", "matches"),
    [
        (["www.example.test"], "WWW.example.test", True),
        (["*.example.test"], "www.example.test", True),
        (["*.example.test"], "a.b.example.test", False),  # one label only (RFC 6125 6.4.3)
        (["*.example.test"], "example.test", False),
        (["www.example.test"], "www.example.test.", True),
        (["192.0.2.1"], "192.0.2.1", True),
        (["192.0.2.1"], "192.0.2.2", False),
        (["www.example.test"], "192.0.2.1", False),
        (["2001:db8::1"], "[2001:db8::1]", True),
    ],
)
def test_hostname_matching(pki: Pki, sans: list[str], name: str, matches: bool) -> None:
    assert hostname_matches(pki.leaf(sans).cert, name) is matches


def _outcome(
    chain: list,
    *,
    version: str = "TLSv1.3",
    hsts: HstsCheck | None = None,
    redirect: RedirectCheck | None = None,
    host: str = "192.0.2.1",
    sni: str | None = None,
) -> EndpointOutcome:  # type: ignore[type-arg]
    observation = TlsObservation(host, version, "TLS_AES_128_GCM_SHA256", sni, tuple(chain), hsts, redirect)
    return EndpointOutcome(Endpoint(host, 443, sni), NetStatus.OK, None, observation)


@pytest.mark.parametrize(
    ("hsts", "redirect", "expected"),
    [
        (
            HstsCheck(True, "max-age=31536000; includeSubDomains", 31536000),
            RedirectCheck(80, True, 301, "https://x/"),
            set(),
        ),
        (HstsCheck(True, None, None), None, {"no-hsts"}),
        (HstsCheck(True, "max-age=0", 0), None, {"no-hsts"}),  # RFC 6797 6.1.1: forget the host
        (HstsCheck(True, "includeSubDomains", None), None, {"no-hsts"}),  # no max-age: invalid
        (HstsCheck(False), None, set()),  # not a web server: nothing concluded
        (None, RedirectCheck(80, True, 200), {"no-https-redirect"}),
        (None, RedirectCheck(80, True, 302, "http://x/"), {"no-https-redirect"}),
        (None, RedirectCheck(80, False, reason="connection refused"), set()),  # nothing to strip
        (None, RedirectCheck(80, True, reason="the service does not answer HTTP"), set()),
    ],
)
def test_http_findings(
    pki: Pki, hsts: HstsCheck | None, redirect: RedirectCheck | None, expected: set[str]
) -> None:
    leaf = pki.leaf(["192.0.2.1"]).cert
    analyzer = ChainAnalyzer(CertificatePool([pki.root.cert]))
    outcome = _outcome([leaf, pki.intermediate.cert], hsts=hsts, redirect=redirect)
    assert codes(endpoint_findings(outcome, analyzer, EvaluationPolicy(pki.now))) == expected


def test_endpoint_findings_name_the_sni_and_legacy_tls(pki: Pki) -> None:
    analyzer = ChainAnalyzer(CertificatePool([pki.root.cert]))
    leaf = pki.leaf(["www.example.test"]).cert
    policy = EvaluationPolicy(pki.now)
    assert (
        codes(
            endpoint_findings(
                _outcome([leaf, pki.intermediate.cert], sni="www.example.test"), analyzer, policy
            )
        )
        == set()
    )
    found = endpoint_findings(
        _outcome([leaf, pki.intermediate.cert], version="TLSv1.1", sni="api.example.test"), analyzer, policy
    )
    assert codes(found) == {"hostname-mismatch", "legacy-tls"}
    assert {f.sni for f in found} == {"api.example.test"}
    failed = EndpointOutcome(Endpoint("192.0.2.1", 443), NetStatus.TIMEOUT, "timed out after 1 s")
    assert endpoint_findings(failed, analyzer, policy) == []


def test_a_certificate_met_again_in_a_scan_is_reported_at_each_place(pki: Pki) -> None:
    """A scan judges each certificate once (``judged``), but a shared intermediate's
    findings are still raised at every endpoint presenting it, as if judged alone."""
    analyzer = ChainAnalyzer(CertificatePool([pki.root.cert]))
    policy = EvaluationPolicy(pki.now + dt.timedelta(days=2000))  # the intermediate expired too
    outcomes = [
        _outcome([pki.leaf([host]).cert, pki.intermediate.cert], host=host, sni=sni)
        for host, sni in (("192.0.2.1", None), ("192.0.2.2", "b.example.test"), ("192.0.2.2", None))
    ]
    judged: CertificateVerdicts = {}

    shared = [endpoint_findings(o, analyzer, policy, judged) for o in outcomes]

    assert shared == [endpoint_findings(o, analyzer, policy) for o in outcomes]
    intermediate = fingerprint(pki.intermediate.cert)
    assert [
        {
            (f.location, f.sni)
            for f in found
            if f.fingerprint_sha256 == intermediate and f.code.value == "expired"
        }
        for found in shared
    ] == [{("192.0.2.1:443", None)}, {("192.0.2.2:443", "b.example.test")}, {("192.0.2.2:443", None)}]


def test_key_reuse_needs_several_certificates_or_endpoints() -> None:
    one_cert_two_files = [
        KeyUse("k", "c1", "/etc/a/cert.pem", None, False),
        KeyUse("k", "c1", "/etc/a/fullchain.pem", None, False),
    ]
    assert key_reuse_findings(one_cert_two_files) == []
    renewed_same_key = [KeyUse("k", "c1", "/a.pem", None, False), KeyUse("k", "c2", "/b.pem", None, False)]
    assert {f.location for f in key_reuse_findings(renewed_same_key)} == {"/a.pem", "/b.pem"}
    two_endpoints = [
        KeyUse("k", "c1", "192.0.2.1:443", None, True),
        KeyUse("k", "c1", "192.0.2.2:443", None, True),
    ]
    assert len(key_reuse_findings(two_endpoints)) == 2
    two_names_one_endpoint = [
        KeyUse("k", "c1", "192.0.2.1:443", "a.test", True),
        KeyUse("k", "c1", "192.0.2.1:443", "b.test", True),
    ]
    assert key_reuse_findings(two_names_one_endpoint) == []
    # Only the locations just scanned get findings.
    only = key_reuse_findings(two_endpoints, report_for={("192.0.2.1:443", "")})
    assert [f.location for f in only] == ["192.0.2.1:443"]
