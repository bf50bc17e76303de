"""Red Hat's certmonger against a real ``certfleet serve``: its ``scep-submit`` helper run
directly (caps, CA certificates, and a PKCSReq then a RenewalReq it transmits as GET with a
URL-encoded message and whose CertRep it verifies), and
the certmonger daemon on a private socket without D-Bus (``getcert add-scep-ca``, ``getcert
request``, then ``resubmit`` and ``rekey`` to renew)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.integration.scep_serve import ScepServe
from tests.protocols.scep.client import Message, csr, envelope_aes, rsa_key, self_signed

SCEP_SUBMIT = "/usr/lib/certmonger/scep-submit"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("certmonger") is None, reason="certmonger is not installed"),
]
DEADLINE_SECONDS = 60


@dataclass
class Certmonger:
    env: dict[str, str]
    workdir: Path

    def getcert(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["getcert", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=DEADLINE_SECONDS,
            check=False,
        )


@pytest.fixture
def certmonger(tmp_path: Path) -> Iterator[Certmonger]:
    """The daemon on its own socket and state directories (no D-Bus, no system files)."""
    for name in ("cas", "requests", "local", "config", "work"):
        (tmp_path / name).mkdir()
    socket_path = tmp_path / "certmonger.sock"
    env = {
        **os.environ,
        "CERTMONGER_CAS_DIR": str(tmp_path / "cas"),
        "CERTMONGER_REQUESTS_DIR": str(tmp_path / "requests"),
        "CERTMONGER_LOCAL_CA_DIR": str(tmp_path / "local"),
        "CERTMONGER_CONFIG_DIR": str(tmp_path / "config"),
        "CERTMONGER_SYSTEM_LOCK_FILE": str(tmp_path / "lock"),
        "CERTMONGER_PVT_ADDRESS": f"unix:path={socket_path}",
        "TMPDIR": str(tmp_path / "work"),
    }
    log = (tmp_path / "certmonger.log").open("wb")
    daemon = subprocess.Popen(
        ["certmonger", "-n", "-L", "-P", str(socket_path), "-d", "1"], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not socket_path.exists():  # the daemon creates its socket once it listens
        assert daemon.poll() is None, (tmp_path / "certmonger.log").read_text()
        assert time.monotonic() < deadline, "certmonger did not open its socket"
        time.sleep(0.05)
    try:
        yield Certmonger(env, tmp_path / "work")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=DEADLINE_SECONDS)
        log.close()


def _request_id(output: str) -> str:
    return output.split('"')[1]  # New signing request "20261203111050" added.


def test_certmonger_daemon_enrols_resubmits_and_rekeys(scep_serve: ScepServe, certmonger: Certmonger) -> None:
    added = certmonger.getcert("add-scep-ca", "-c", "certfleet", "-u", scep_serve.url)
    assert added.returncode == 0, added.stderr
    key, cert = certmonger.workdir / "key.pem", certmonger.workdir / "cert.pem"
    challenge = scep_serve.challenge("--names", "**.hosts.example.test", team="linux")
    requested = certmonger.getcert(
        "request", "-c", "certfleet", "-k", str(key), "-f", str(cert), "-N", "CN=web1.hosts.example.test",
        "-L", challenge, "-w",
    )  # fmt: skip
    assert requested.returncode == 0, requested.stdout + requested.stderr
    request_id = _request_id(requested.stdout)
    first = x509.load_pem_x509_certificate(cert.read_bytes())
    assert scep_serve.inventory(first)["team"] == "linux"
    assert scep_serve.inventory(first)["source"] == "scep"

    # resubmit: the same key, a PKCSReq signed with the current certificate (a renewal).
    resubmitted = certmonger.getcert("resubmit", "-i", request_id, "-w")
    assert resubmitted.returncode == 0, resubmitted.stderr
    second = x509.load_pem_x509_certificate(cert.read_bytes())
    assert second.serial_number != first.serial_number and second.public_key() == first.public_key()

    # rekey: a new key, the request signed with the old certificate and key.
    rekeyed = certmonger.getcert("rekey", "-i", request_id, "-w")
    assert rekeyed.returncode == 0, rekeyed.stderr
    third = x509.load_pem_x509_certificate(cert.read_bytes())
    assert third.public_key() != second.public_key() and third.subject == first.subject
    assert scep_serve.inventory(third)["team"] == "linux"
    listed = certmonger.getcert("list", "-i", request_id)
    assert "status: MONITORING" in listed.stdout and "ca-error" not in listed.stdout


def test_scep_submit_reads_caps_and_the_ra_and_ca_certificates(scep_serve: ScepServe) -> None:
    caps = subprocess.run(
        [SCEP_SUBMIT, "-u", scep_serve.url, "-c"], capture_output=True, text=True, check=False
    )
    assert caps.returncode == 0 and {"AES", "SHA-256", "POSTPKIOperation", "Renewal"} <= set(
        caps.stdout.split()
    )
    certs = subprocess.run(
        [SCEP_SUBMIT, "-u", scep_serve.url, "-C"], capture_output=True, text=True, check=False
    )
    assert certs.returncode == 0
    pems = x509.load_pem_x509_certificates(certs.stdout.encode())
    assert scep_serve.ra_certificate() in pems and len(pems) == 3


def test_certmonger_with_a_used_challenge_is_rejected(scep_serve: ScepServe, certmonger: Certmonger) -> None:
    certmonger.getcert("add-scep-ca", "-c", "certfleet", "-u", scep_serve.url)
    challenge = scep_serve.challenge()
    ok = certmonger.getcert(
        "request", "-c", "certfleet", "-k", str(certmonger.workdir / "a.key"),
        "-f", str(certmonger.workdir / "a.pem"), "-N", "CN=a.example.test", "-L", challenge, "-w",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    again = certmonger.getcert(
        "request", "-c", "certfleet", "-k", str(certmonger.workdir / "b.key"),
        "-f", str(certmonger.workdir / "b.pem"), "-N", "CN=b.example.test", "-L", challenge, "-w",
    )  # fmt: skip
    listed = certmonger.getcert("list", "-i", _request_id(again.stdout))
    assert "status: CA_REJECTED" in listed.stdout, listed.stdout
    assert not (certmonger.workdir / "b.pem").exists()


def _scep_submit(scep_serve: ScepServe, workdir: Path, message: bytes) -> subprocess.CompletedProcess[str]:
    """``scep-submit -p FILE``: the pkiMessage as PEM, the RA certificate to verify the
    CertRep with (``-r``) and the CA chain (``-I``); certmonger's daemon calls it this way."""
    ra = scep_serve.ra_certificate()
    chain = [
        c
        for c in x509.load_pem_x509_certificates(
            subprocess.run([SCEP_SUBMIT, "-u", scep_serve.url, "-C"], capture_output=True, check=True).stdout
        )
        if c != ra
    ]
    (workdir / "ra.pem").write_bytes(ra.public_bytes(serialization.Encoding.PEM))
    (workdir / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (workdir / "request.pem").write_bytes(
        b"-----BEGIN PKCS7-----\n" + base64.encodebytes(message) + b"-----END PKCS7-----\n"
    )
    return subprocess.run(
        [
            SCEP_SUBMIT, "-u", scep_serve.url, "-r", str(workdir / "ra.pem"),
            "-I", str(workdir / "chain.pem"), "-p", str(workdir / "request.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )  # fmt: skip


def _issued(output: str, key: rsa.RSAPrivateKey, recipient: x509.Certificate) -> x509.Certificate:
    """scep-submit prints the pkcsPKIEnvelope (encrypted to the requester) as PEM: opened
    with the requester's key, it holds a degenerate SignedData with the certificate."""
    der = base64.b64decode("".join(line for line in output.splitlines() if not line.startswith("-----")))
    content = pkcs7.pkcs7_decrypt_der(der, recipient, key, [])
    (certificate,) = pkcs7.load_der_pkcs7_certificates(content)
    return certificate


def test_scep_submit_enrols_and_renews(scep_serve: ScepServe, tmp_path: Path) -> None:
    # Given a device with a self-signed certificate and a one-use challenge of team "printers"
    key = rsa_key()
    device = self_signed(key, "printer7.example.test")
    challenge = scep_serve.challenge("--names", "*.example.test", team="printers")
    request = csr(key, "printer7.example.test", challenge=challenge).public_bytes(serialization.Encoding.DER)
    ra = scep_serve.ra_certificate()

    # When scep-submit sends the PKCSReq
    enrolled = _scep_submit(
        scep_serve, tmp_path, Message("19", envelope_aes(request, ra), device, key).build()
    )

    # Then it exits 0 (issued) with the certificate, in the inventory with the challenge's team
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    first = _issued(enrolled.stdout, key, device)
    assert first.public_key() == key.public_key()
    assert scep_serve.inventory(first)["team"] == "printers"
    assert scep_serve.inventory(first)["source"] == "scep"

    # When it sends a RenewalReq for a new key, signed by the issued certificate and its key
    new_key = rsa_key()
    renewal = csr(new_key, "printer7.example.test").public_bytes(serialization.Encoding.DER)
    renewed = _scep_submit(scep_serve, tmp_path, Message("17", envelope_aes(renewal, ra), first, key).build())

    # Then it is issued too (no challenge needed), for the new key and the same team
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = _issued(renewed.stdout, key, first)
    assert second.public_key() == new_key.public_key() and second.subject == first.subject
    assert second.serial_number != first.serial_number
    assert scep_serve.inventory(second)["team"] == "printers"

    # And the spent challenge gets the PKCSReq of another device refused: exit 2
    other = rsa_key()
    again = csr(other, "printer8.example.test", challenge=challenge).public_bytes(serialization.Encoding.DER)
    refused = _scep_submit(
        scep_serve, tmp_path, Message("19", envelope_aes(again, ra), self_signed(other), other).build()
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
