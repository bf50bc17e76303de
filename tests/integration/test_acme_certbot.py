"""certbot (PyPI) against a real ``certfleet serve``: obtain (http-01, EC and RSA keys),
renew (forced, and by an ARI window moved with ``certfleet acme renew-now``), revoke with a
reason, and register with external account binding."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.ports import free_port
from tests.protocols.acme.peers import (
    CertfleetServe,
    ChallTestSrv,
    _bin,
    openssl_verify,
    serial_of,
)

pytestmark = pytest.mark.integration


class Certbot:
    def __init__(self, server: CertfleetServe, http01_port: int, workdir: Path) -> None:
        self.server = server
        self.port = http01_port
        self.workdir = workdir

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(self.server.root_pem)}
        result = subprocess.run(
            [
                _bin("certbot"),
                *args,
                "--non-interactive",
                "--config-dir",
                str(self.workdir / "config"),
                "--work-dir",
                str(self.workdir / "work"),
                "--logs-dir",
                str(self.workdir / "logs"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=180,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def certonly(self, name: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self(
            "certonly",
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            str(self.port),
            "--server",
            self.server.directory_url,
            "--agree-tos",
            "--register-unsafely-without-email",
            "-d",
            name,
            *extra,
            check=check,
        )

    def log(self) -> str:
        """certbot prints only a summary of a server problem; its log has the document."""
        return (self.workdir / "logs" / "letsencrypt.log").read_text()

    def live(self, name: str) -> Path:
        return self.workdir / "config" / "live" / name


@pytest.fixture(scope="module")
def dns() -> Iterator[ChallTestSrv]:
    server = ChallTestSrv()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http01_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv, http01_port: int
) -> Iterator[CertfleetServe]:
    serve = CertfleetServe(
        tmp_path_factory.mktemp("certbot-server"), dns, http01_port=http01_port, tlsalpn01_port=free_port()
    )
    yield serve
    serve.stop()


@pytest.fixture
def certbot(server: CertfleetServe, http01_port: int, tmp_path: Path) -> Certbot:
    return Certbot(server, http01_port, tmp_path)


def _check_issued(server: CertfleetServe, live: Path, team: str | None) -> x509.Certificate:
    verify = openssl_verify(server.root_pem, live / "cert.pem", live / "chain.pem")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    record = server.inventory(serial_of(live / "cert.pem"))
    assert record["source"] == "issued"
    assert record["team"] == team
    return x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())


@pytest.mark.parametrize(
    ("key_type", "key_class"), [("ecdsa", ec.EllipticCurvePublicKey), ("rsa", rsa.RSAPublicKey)]
)
def test_certbot_obtains_with_http01(
    certbot: Certbot, server: CertfleetServe, key_type: str, key_class: type
) -> None:
    name = f"{key_type}.certbot.example.test"
    certbot.certonly(name, "--key-type", key_type)
    cert = _check_issued(server, certbot.live(name), None)
    assert isinstance(cert.public_key(), key_class)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [name]


def test_certbot_renews_forced_and_when_ari_says_so(certbot: Certbot, server: CertfleetServe) -> None:
    name = "renew.certbot.example.test"
    certbot.certonly(name)
    first = serial_of(certbot.live(name) / "cert.pem")

    certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")
    forced = serial_of(certbot.live(name) / "cert.pem")
    assert forced != first
    _check_issued(server, certbot.live(name), None)

    # Not due: the ARI window is in the last third of the lifetime.
    certbot("renew", "--no-random-sleep-on-renew")
    assert serial_of(certbot.live(name) / "cert.pem") == forced

    moved = server.cli("acme", "renew-now", forced)
    assert moved.returncode == 0, moved.stderr
    certbot("renew", "--no-random-sleep-on-renew")
    by_ari = serial_of(certbot.live(name) / "cert.pem")
    assert by_ari != forced
    _check_issued(server, certbot.live(name), None)


def test_certbot_revokes_with_a_reason(certbot: Certbot, server: CertfleetServe) -> None:
    name = "revoke.certbot.example.test"
    certbot.certonly(name)
    serial = serial_of(certbot.live(name) / "cert.pem")
    certbot(
        "revoke",
        "--cert-name",
        name,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
        "--server",
        server.directory_url,
    )
    record = server.inventory(serial)
    assert record["status"] == "revoked"
    assert record["revocation_reason"] == "keyCompromise"
    again = certbot(
        "revoke",
        "--cert-name",
        name,
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
        "--server",
        server.directory_url,
        check=False,
    )
    assert again.returncode != 0
    assert "urn:ietf:params:acme:error:alreadyRevoked" in certbot.log()


def test_certbot_with_external_account_binding(certbot: Certbot, server: CertfleetServe) -> None:
    kid, hmac_key = server.eab("web", "*.web.example.test")
    name = "shop.web.example.test"
    certbot.certonly(name, "--eab-kid", kid, "--eab-hmac-key", hmac_key)
    _check_issued(server, certbot.live(name), "web")
    # The bound account issues only under its team's names.
    refused = certbot.certonly("elsewhere.example.test", check=False)
    assert refused.returncode != 0
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in certbot.log()
    assert "team 'web' may not obtain certificates for 'elsewhere.example.test'" in certbot.log()
