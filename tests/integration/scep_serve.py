"""One real ``certfleet serve`` for the SCEP client suites (certmonger, scepclient), started
once per session, with helpers to mint challenges and read the inventory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.x509 import serial_hex
from tests.integration.test_serve import Server, certfleet

__all__ = ["ScepServe", "scep_serve"]


@dataclass
class ScepServe:
    server: Server
    data_dir: Path

    @property
    def url(self) -> str:
        return f"{self.server.http}/scep"

    def challenge(self, *options: str, team: str = "devices") -> str:
        result = certfleet(
            "scep", "challenge", "create", "--team", team, *options, "--data-dir", str(self.data_dir)
        )
        return result.stdout.strip()

    def ra_certificate(self) -> x509.Certificate:
        response = httpx.get(self.url, params={"operation": "GetCACert"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-x509-ca-ra-cert"
        for cert in pkcs7.load_der_pkcs7_certificates(response.content):
            if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return cert
        raise AssertionError("GetCACert has no RA certificate")

    def ra_fingerprint(self) -> str:
        return hashlib.sha256(self.ra_certificate().public_bytes(serialization.Encoding.DER)).hexdigest()

    def inventory(self, cert: x509.Certificate) -> dict[str, object]:
        """The inventory record of ``cert``, as ``certfleet inventory list`` shows it."""
        listed = certfleet("inventory", "list", "--format", "json", "--data-dir", str(self.data_dir))
        (record,) = [r for r in json.loads(listed.stdout) if r["serial"] == serial_hex(cert.serial_number)]
        return dict(record)


@pytest.fixture(scope="session")
def scep_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScepServe]:
    """Default workers (one per core): the RA is issued once however many workers race."""
    data_dir = tmp_path_factory.mktemp("scep") / "data"
    certfleet("init", "--data-dir", str(data_dir))
    server = Server(data_dir)
    server.start()
    try:
        yield ScepServe(server, data_dir)
    finally:
        server.stop()
