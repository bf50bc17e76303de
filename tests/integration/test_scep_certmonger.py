"""Red Hat's certmonger against a real ``certfleet serve``: its ``scep-submit`` helper run
directly (caps, CA certificates, a PKCSReq it sends as GET with a URL-encoded message), and
the certmonger daemon on a private socket without D-Bus (``getcert add-scep-ca``, ``getcert
request``, then ``resubmit`` and ``rekey`` to renew)."""

from __future__ import annotations

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

from tests.integration.scep_serve import ScepServe

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
