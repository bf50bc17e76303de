"""Revocation end to end with real clients: a ``certfleet serve`` process, ``certfleet revoke``
from another process, ``openssl ocsp`` and ``openssl verify -crl_check`` against what the
server publishes, pkilint on the CRLs and responses, and the same answers after a restart."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import ssl
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from tests.integration.test_serve import CERTFLEET, Server, certfleet
from tests.revocation.conftest import pkilint_errors

pytestmark = pytest.mark.integration


@dataclass
class World:
    """One data directory and its running server; certificates are issued per test."""

    base: Path
    data_dir: Path
    server: Server
    root: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``certfleet`` as a separate process, whatever its exit status."""
        return subprocess.run(
            [CERTFLEET, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def issue(self, name: str) -> Path:
        out = self.base / name
        certfleet(
            "issue", "--san", f"{name}.example.test", "--out", str(out), "--data-dir", str(self.data_dir)
        )
        return out

    def revoke(self, issued: Path, reason: str) -> None:
        result = self.cli("revoke", serial_of(issued), "--reason", reason)
        assert result.returncode == 0, result.stderr

    def ocsp(self, issued: Path, *extra: str) -> str:
        """``openssl ocsp`` as the issue specifies; stdout and stderr together."""
        result = subprocess.run(
            [
                "openssl",
                "ocsp",
                "-issuer",
                str(issued / "chain.pem"),
                "-cert",
                str(issued / "cert.pem"),
                "-url",
                f"{self.server.http}/ocsp",
                "-CAfile",
                str(self.root),
                "-resp_text",
                *extra,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        # openssl exits 0 even for a revoked certificate: callers read the status line.
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr


def certificate(issued: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((issued / "cert.pem").read_bytes())


def serial_of(issued: Path) -> str:
    return format(certificate(issued).serial_number, "x")


def status_line(output: str, issued: Path) -> str:
    match = re.search(rf"^{re.escape(str(issued / 'cert.pem'))}: (\w+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def crl_url(cert: x509.Certificate) -> str:
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    name = points[0].full_name
    assert name is not None
    return str(name[0].value)


def fetch_crl(url: str, into: Path) -> x509.CertificateRevocationList:
    """GET the CRL (DER) and keep it as PEM for ``openssl verify -CRLfile``."""
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    (into.with_suffix(".der")).write_bytes(response.content)
    subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(into.with_suffix(".der")), "-out", str(into)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return x509.load_der_x509_crl(response.content)


def verify(world: World, issued: Path, *crls: Path, deltas: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [
        "openssl",
        "verify",
        "-crl_check",
        "-CAfile",
        str(world.root),
        "-untrusted",
        str(issued / "chain.pem"),
    ]
    if deltas:
        argv.append("-use_deltas")
    for crl in crls:
        argv += ["-CRLfile", str(crl)]
    argv.append(str(issued / "cert.pem"))
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def ocsp_request(issued: Path) -> bytes:
    cert = certificate(issued)
    issuer = x509.load_pem_x509_certificates((issued / "chain.pem").read_bytes())[0]
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("revocation")
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    server = Server(data_dir, extra=["--workers", "1"])
    # The CRL distribution points and the OCSP URL in every certificate name this listener.
    (data_dir / "config.toml").write_text(f'public_base_url = "{server.http}"\n')
    certfleet("init", "--data-dir", str(data_dir))
    root = base / "root.pem"
    root.write_text(certfleet("ca", "root", "--data-dir", str(data_dir)).stdout)
    server.start()
    yield World(base, data_dir, server, root)
    if server.process is not None and server.process.poll() is None:
        server.stop()


def test_openssl_ocsp_sees_a_cli_revocation_at_once(world: World) -> None:
    issued = world.issue("alpha")
    before = world.ocsp(issued)
    assert status_line(before, issued) == "good"
    assert "Response verify OK" in before

    world.revoke(issued, "keyCompromise")  # another process, straight into the database

    with_nonce = world.ocsp(issued)
    assert status_line(with_nonce, issued) == "revoked"
    assert "Reason: keyCompromise" in with_nonce
    assert "Response verify OK" in with_nonce
    assert "WARNING: no nonce in response" not in with_nonce  # the nonce was echoed
    cached_path = world.ocsp(issued, "-no_nonce")  # the pre-signed, cached answer
    assert status_line(cached_path, issued) == "revoked"
    assert "Response verify OK" in cached_path


def test_openssl_verify_with_the_crl_from_the_distribution_point(world: World) -> None:
    revoked, kept = world.issue("bravo"), world.issue("charlie")
    world.revoke(revoked, "superseded")
    crl = world.base / "bravo-crl.pem"
    fetched = fetch_crl(crl_url(certificate(revoked)), crl)
    assert crl_url(certificate(kept)) == crl_url(certificate(revoked))
    assert fetched.get_revoked_certificate_by_serial_number(certificate(revoked).serial_number) is not None
    failed = verify(world, revoked, crl)
    assert failed.returncode == 2 and "certificate revoked" in failed.stdout + failed.stderr
    passed = verify(world, kept, crl)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.strip().endswith("cert.pem: OK")


def test_a_delta_crl_brings_an_older_complete_crl_up_to_date(world: World) -> None:
    older = world.base / "older.pem"
    complete = fetch_crl(crl_url(certificate(world.issue("delta-kept"))), older)
    issued, kept = world.issue("delta-revoked"), world.base / "delta-kept"
    world.revoke(issued, "cessationOfOperation")
    assert verify(world, issued, older).returncode == 0  # the older CRL alone knows nothing of it
    freshest = complete.extensions.get_extension_for_class(x509.FreshestCRL).value
    assert freshest[0].full_name is not None
    delta_path = world.base / "delta.pem"
    delta = fetch_crl(str(freshest[0].full_name[0].value), delta_path)
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number <= crl_number(complete) < crl_number(delta)
    assert delta.get_revoked_certificate_by_serial_number(certificate(issued).serial_number) is not None
    failed = verify(world, issued, older, delta_path, deltas=True)
    assert failed.returncode == 2 and "certificate revoked" in failed.stdout + failed.stderr
    assert verify(world, kept, older, delta_path, deltas=True).returncode == 0


def test_several_certificates_in_one_openssl_request(world: World) -> None:
    good, revoked = world.issue("multi-good"), world.issue("multi-revoked")
    world.revoke(revoked, "affiliationChanged")
    result = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(good / "chain.pem"),
            "-cert",
            str(good / "cert.pem"),
            "-cert",
            str(revoked / "cert.pem"),
            "-url",
            f"{world.server.http}/ocsp",
            "-CAfile",
            str(world.root),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert status_line(output, good) == "good"
    assert status_line(output, revoked) == "revoked"
    assert "Reason: affiliationChanged" in output
    assert "Response verify OK" in output


def _http_time(value: str) -> dt.datetime:
    return parsedate_to_datetime(value).astimezone(dt.UTC)


def test_http_caching_headers_and_conditional_requests(world: World) -> None:
    issued = world.issue("cache")
    crl = httpx.get(crl_url(certificate(issued)))
    parsed = x509.load_der_x509_crl(crl.content)
    assert _http_time(crl.headers["last-modified"]) == parsed.last_update_utc
    assert _http_time(crl.headers["expires"]) == parsed.next_update_utc
    max_age = int(re.search(r"max-age=(\d+)", crl.headers["cache-control"]).group(1))  # type: ignore[union-attr]
    assert parsed.next_update_utc is not None
    assert 0 < max_age <= (parsed.next_update_utc - dt.datetime.now(dt.UTC)).total_seconds()
    again = httpx.get(crl_url(certificate(issued)), headers={"If-None-Match": crl.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    encoded = urllib.parse.quote(base64.b64encode(ocsp_request(issued)).decode(), safe="")
    response = httpx.get(f"{world.server.http}/ocsp/{encoded}")
    assert response.headers["content-type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert _http_time(response.headers["expires"]) == answer.next_update_utc
    assert _http_time(response.headers["last-modified"]) == answer.this_update_utc
    max_age = int(re.search(r"max-age=(\d+)", response.headers["cache-control"]).group(1))  # type: ignore[union-attr]
    assert answer.next_update_utc is not None
    assert 0 < max_age <= (answer.next_update_utc - dt.datetime.now(dt.UTC)).total_seconds()
    unchanged = httpx.get(
        f"{world.server.http}/ocsp/{encoded}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert unchanged.status_code == 304


def _self_signed_issuer() -> x509.Certificate:
    """A CA certfleet does not serve."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Somebody Else's CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert


def test_get_encodings_and_every_malformed_request_over_http(world: World) -> None:
    issued = world.issue("encodings")
    world.revoke(issued, "privilegeWithdrawn")
    der = ocsp_request(issued)
    url = f"{world.server.http}/ocsp"

    def status(response: httpx.Response) -> ocsp.OCSPResponseStatus:
        assert response.status_code == 200  # RFC 6960 A.1: OCSP errors travel as HTTP 200
        assert response.headers["content-type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(response.content).response_status

    for path in (
        urllib.parse.quote(base64.b64encode(der).decode(), safe=""),
        base64.b64encode(der).decode(),  # '/' and '+' unencoded
        base64.urlsafe_b64encode(der).decode().rstrip("="),
    ):
        response = httpx.get(f"{url}/{path}")
        assert status(response) is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert ocsp.load_der_ocsp_response(response.content).certificate_status is ocsp.OCSPCertStatus.REVOKED
    posted = httpx.post(url, content=der, headers={"Content-Type": "application/ocsp-request"})
    assert ocsp.load_der_ocsp_response(posted.content).certificate_status is ocsp.OCSPCertStatus.REVOKED

    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    ocsp_type = {"Content-Type": "application/ocsp-request"}
    assert status(httpx.post(url, content=b"certainly not DER", headers=ocsp_type)) is malformed
    assert status(httpx.post(url, content=der[: len(der) // 2], headers=ocsp_type)) is malformed
    assert status(httpx.post(url, content=b"", headers=ocsp_type)) is malformed
    assert status(httpx.post(url, content=b"\x30" * 60_000, headers=ocsp_type)) is malformed
    # Over the listener's 64 KiB limit for /ocsp the body is never read: 413, problem+json.
    oversized = httpx.post(url, content=b"\x30" * 70_000, headers=ocsp_type)
    assert oversized.status_code == 413
    assert oversized.headers["content-type"] == "application/problem+json"
    for bad in ("%zz", "%4", "not*base64", "MEMw+QT_", "AAAAA"):
        assert status(httpx.get(f"{url}/{bad}")) is malformed, bad
    assert status(httpx.get(url)) is malformed
    truncated = base64.b64encode(der[:-3]).decode()
    assert status(httpx.get(f"{url}/{urllib.parse.quote(truncated, safe='')}")) is malformed

    foreign = _self_signed_issuer()
    stranger = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            _name_hash(foreign),
            _key_hash(foreign),
            certificate(issued).serial_number,
            hashes.SHA1(),
        )
        .build()
        .public_bytes(Encoding.DER)
    )
    assert (
        status(httpx.post(url, content=stranger, headers=ocsp_type)) is ocsp.OCSPResponseStatus.UNAUTHORIZED
    )


def _name_hash(cert: x509.Certificate) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(cert.subject.public_bytes())
    return digest.finalize()


def _key_hash(cert: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA1()).build()
    return request.issuer_key_hash


def test_pkilint_finds_no_error_in_what_the_server_publishes(world: World) -> None:
    good, revoked = world.issue("lint-good"), world.issue("lint-revoked")
    world.revoke(revoked, "keyCompromise")
    full_path = world.base / "lint-full.pem"
    full = fetch_crl(crl_url(certificate(revoked)), full_path)
    freshest = full.extensions.get_extension_for_class(x509.FreshestCRL).value[0].full_name
    assert freshest is not None
    fetch_crl(str(freshest[0].value), world.base / "lint-delta.pem")
    root_crl = x509.load_pem_x509_certificates((revoked / "chain.pem").read_bytes())[0]
    fetch_crl(crl_url(root_crl), world.base / "lint-root.pem")
    for name in ("lint-full", "lint-delta", "lint-root"):
        der = (world.base / name).with_suffix(".der")
        for profile in ("PKIX", "BR"):
            assert pkilint_errors("lint_crl", der, "-t", "CRL", "-p", profile) == [], (name, profile)
    for issued in (good, revoked):
        out = world.base / f"{issued.name}.ocsp.der"
        world.ocsp(issued, "-no_nonce", "-respout", str(out))
        assert pkilint_errors("lint_ocsp_response", out) == [], issued.name


def _api(world: World) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(world.root))
    return httpx.Client(base_url=world.server.https, verify=context, timeout=30)


def _token(world: World, team: str, scope: str, *patterns: str) -> str:
    args = ["token", "create", "--team", team, "--scope", scope]
    for pattern in patterns:
        args += ["--allow-names", pattern]
    return certfleet(*args, "--data-dir", str(world.data_dir)).stdout.strip()


def test_rest_revocation_is_team_scoped_and_seen_by_openssl(world: World) -> None:
    blue_issuer = _token(world, "blue", "issue", "*.blue.test")
    # Issue 12: revoking needs the revoke scope (this test used to revoke with the issue token).
    blue = _token(world, "blue", "revoke", "*.blue.test")
    red = _token(world, "red", "revoke", "*.red.test")
    blue_reader = _token(world, "blue", "read")
    with _api(world) as api:
        created = api.post(
            "/api/v1/certificates",
            json={"key_type": "ec-p256", "sans": ["www.blue.test"]},
            headers={"Authorization": f"Bearer {blue_issuer}"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        serial = body["certificate"]["serial"]
        issued = world.base / "rest"
        issued.mkdir()
        (issued / "cert.pem").write_text(body["certificate_pem"])
        (issued / "chain.pem").write_text(body["chain_pem"])
        revoke = f"/api/v1/certificates/{serial}/revoke"

        other_team = api.post(
            revoke, json={"reason": "keyCompromise"}, headers={"Authorization": f"Bearer {red}"}
        )
        assert other_team.status_code == 404
        reader = api.post(revoke, json={}, headers={"Authorization": f"Bearer {blue_reader}"})
        assert reader.status_code == 403
        issuer = api.post(revoke, json={}, headers={"Authorization": f"Bearer {blue_issuer}"})
        assert issuer.status_code == 403 and "revoke is required" in issuer.json()["detail"]
        bad = api.post(
            revoke, json={"reason": "certificateHold"}, headers={"Authorization": f"Bearer {blue}"}
        )
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        assert status_line(world.ocsp(issued), issued) == "good"  # none of that changed anything

        done = api.post(revoke, json={"reason": "keyCompromise"}, headers={"Authorization": f"Bearer {blue}"})
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["revocation_reason"]) == ("revoked", "keyCompromise")
        twice = api.post(revoke, json={"reason": "superseded"}, headers={"Authorization": f"Bearer {blue}"})
        assert twice.status_code == 409 and "already revoked" in twice.json()["detail"]
    output = world.ocsp(issued)
    assert status_line(output, issued) == "revoked" and "Reason: keyCompromise" in output


def test_cli_refusals_are_one_line_and_exit_2(world: World) -> None:
    issued = world.issue("refusals")
    for args, message in (
        (("revoke", serial_of(issued), "--reason", "certificateHold"), "unknown revocation reason"),
        (("revoke", "abcdef0123", "--reason", "superseded"), "no certificate or serial abcdef0123"),
        (("revoke", "not-hex"), "bad serial"),
        (("revoke", "abcdef", "--cert", str(issued / "cert.pem")), "not abcdef"),
        (("revoke", serial_of(issued), "--invalidity-date", "yesterday"), "bad --invalidity-date"),
    ):
        result = world.cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert status_line(world.ocsp(issued), issued) == "good"
    world.revoke(issued, "superseded")
    again = world.cli("revoke", serial_of(issued), "--reason", "keyCompromise")
    assert again.returncode == 2 and "already revoked" in again.stderr


def _inventory_status(world: World, issued: Path) -> str:
    shown = world.cli("inventory", "show", serial_of(issued), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    status: str = json.loads(shown.stdout)["status"]
    return status


def test_ocsp_crl_and_inventory_agree_after_a_restart(world: World) -> None:
    kept, before_stop, while_down = world.issue("kept"), world.issue("before-stop"), world.issue("while-down")
    world.revoke(before_stop, "keyCompromise")
    number = crl_number(fetch_crl(crl_url(certificate(kept)), world.base / "restart-before.pem"))
    assert world.server.stop() == 0

    world.revoke(while_down, "superseded")  # nobody is serving: the database alone records it
    world.server.start()

    crl = fetch_crl(crl_url(certificate(kept)), world.base / "restart-after.pem")
    assert crl_number(crl) > number
    for issued, expected in ((kept, "good"), (before_stop, "revoked"), (while_down, "revoked")):
        output = world.ocsp(issued)
        assert status_line(output, issued) == expected
        assert "Response verify OK" in output
        listed = crl.get_revoked_certificate_by_serial_number(certificate(issued).serial_number) is not None
        assert listed == (expected == "revoked")
        assert _inventory_status(world, issued) == ("revoked" if expected == "revoked" else "active")
        assert (verify(world, issued, world.base / "restart-after.pem").returncode == 0) == (
            expected == "good"
        )
