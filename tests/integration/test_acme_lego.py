"""lego (Debian) against a real ``certfleet serve``: obtain with http-01, tls-alpn-01 and
dns-01 (TXT records pushed to pebble-challtestsrv through lego's ``exec`` DNS provider),
renew, revoke, and register with external account binding."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.ports import free_port
from tests.protocols.acme.peers import CertfleetServe, ChallTestSrv, openssl_verify, serial_of

pytestmark = pytest.mark.integration

LEGO = shutil.which("lego")


@pytest.fixture(scope="module")
def dns() -> Iterator[ChallTestSrv]:
    server = ChallTestSrv()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"http01": free_port(), "tlsalpn01": free_port()}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv, ports: dict[str, int]
) -> Iterator[CertfleetServe]:
    serve = CertfleetServe(
        tmp_path_factory.mktemp("lego-server"),
        dns,
        http01_port=ports["http01"],
        tlsalpn01_port=ports["tlsalpn01"],
    )
    yield serve
    serve.stop()


class Lego:
    def __init__(
        self, server: CertfleetServe, dns: ChallTestSrv, ports: dict[str, int], workdir: Path
    ) -> None:
        assert LEGO, "lego is not installed (Debian package lego)"
        self.server = server
        self.dns = dns
        self.ports = ports
        self.workdir = workdir
        self.hook = workdir / "dns-hook.sh"
        # lego's exec provider calls: HOOK present|cleanup FQDN VALUE
        self.hook.write_text(
            "#!/bin/sh\n"
            'case "$1" in\n'
            f'  present) curl -sf -d "{{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}}" '
            f"http://127.0.0.1:{dns.mgmt_port}/set-txt ;;\n"
            f'  cleanup) curl -sf -d "{{\\"host\\":\\"$2\\"}}" '
            f"http://127.0.0.1:{dns.mgmt_port}/clear-txt ;;\n"
            "esac\n"
        )
        self.hook.chmod(0o755)

    def __call__(
        self,
        challenge: list[str],
        names: list[str],
        *command: str,
        check: bool = True,
        extra: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "LEGO_CA_CERTIFICATES": str(self.server.root_pem),
            "EXEC_PATH": str(self.hook),
            "EXEC_PROPAGATION_TIMEOUT": "10",
            "EXEC_POLLING_INTERVAL": "1",
            "EXEC_SEQUENCE_INTERVAL": "1",
        }
        domains = [arg for name in names for arg in ("-d", name)]
        assert LEGO
        result = subprocess.run(
            [
                LEGO,
                "--server",
                self.server.directory_url,
                "--accept-tos",
                "--email",
                "ops@example.test",
                "--path",
                str(self.workdir / "lego"),
                *extra,
                *domains,
                *challenge,
                *command,
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

    @property
    def http(self) -> list[str]:
        return ["--http", "--http.port", f"127.0.0.1:{self.ports['http01']}"]

    @property
    def tls(self) -> list[str]:
        return ["--tls", "--tls.port", f"127.0.0.1:{self.ports['tlsalpn01']}"]

    @property
    def dns01(self) -> list[str]:
        return ["--dns", "exec", "--dns.resolvers", self.dns.resolver, "--dns.disable-cp"]

    def files(self, name: str) -> tuple[Path, Path]:
        """The leaf alone and the issuer chain that lego saved for ``name``."""
        base = self.workdir / "lego" / "certificates"
        bundle = x509.load_pem_x509_certificates((base / f"{name.replace('*', '_')}.crt").read_bytes())
        from certfleet.x509 import to_pem

        leaf, chain = self.workdir / f"{name}-leaf.pem", self.workdir / f"{name}-chain.pem"
        leaf.write_text(to_pem([bundle[0]]))
        chain.write_text(to_pem(bundle[1:]))
        return leaf, chain


@pytest.fixture
def lego(server: CertfleetServe, dns: ChallTestSrv, ports: dict[str, int], tmp_path: Path) -> Lego:
    return Lego(server, dns, ports, tmp_path)


def _check_issued(
    server: CertfleetServe, lego: Lego, name: str, names: list[str], team: str | None = None
) -> str:
    leaf, chain = lego.files(name)
    verify = openssl_verify(server.root_pem, leaf, chain)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    cert = x509.load_pem_x509_certificate(leaf.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    serial = serial_of(leaf)
    record = server.inventory(serial)
    assert record["team"] == team
    assert record["source"] == "issued"
    return serial


def test_lego_obtains_with_http01(lego: Lego, server: CertfleetServe) -> None:
    lego(lego.http, ["http.lego.example.test"], "run")
    _check_issued(server, lego, "http.lego.example.test", ["http.lego.example.test"])


def test_lego_obtains_with_tls_alpn01(lego: Lego, server: CertfleetServe) -> None:
    lego(lego.tls, ["tls.lego.example.test"], "run")
    _check_issued(server, lego, "tls.lego.example.test", ["tls.lego.example.test"])


def test_lego_obtains_a_wildcard_with_dns01(lego: Lego, server: CertfleetServe) -> None:
    names = ["*.dns.lego.example.test", "dns.lego.example.test"]
    lego(lego.dns01, names, "run")
    _check_issued(server, lego, "*.dns.lego.example.test", names)


def test_lego_renews_and_revokes(lego: Lego, server: CertfleetServe) -> None:
    name = "renew.lego.example.test"
    lego(lego.http, [name], "run")
    first = _check_issued(server, lego, name, [name])
    # A 90-day certificate has less than 91 days left: due under --days 91.
    lego(lego.http, [name], "renew", "--days", "91", "--no-random-sleep")
    second = _check_issued(server, lego, name, [name])
    assert second != first
    lego(lego.http, [name], "revoke", "--reason", "4")
    record = server.inventory(second)
    assert record["status"] == "revoked"
    assert record["revocation_reason"] == "superseded"


def test_lego_with_external_account_binding(lego: Lego, server: CertfleetServe) -> None:
    kid, hmac_key = server.eab("payments", "**.pay.example.test")
    name = "api.eu.pay.example.test"
    lego(lego.http, [name], "run", extra=("--eab", "--kid", kid, "--hmac", hmac_key))
    _check_issued(server, lego, name, [name], team="payments")
