"""micromdm's ``scepclient`` (Debian ``scep``) enrols with a challenge and renews with its
certificate against a real ``certfleet serve`` over plain HTTP, and enrols over HTTPS verifying
the listener; the certificates land in the inventory with the challenge's team, source
``scep``; refusals are SCEP failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.scep_serve import ScepServe

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("scepclient") is None, reason="scepclient (Debian scep) is not installed"
    ),
]


def scepclient(
    serve: ScepServe, workdir: Path, *args: str, url: str | None = None, trust: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # The fingerprint picks the RA among GetCACert's certificates: scepclient otherwise
    # encrypts to every one of them, and the CA keys are EC (no key transport).
    argv = [
        "scepclient",
        "-server-url", url or serve.url,
        "-ca-fingerprint", serve.ra_fingerprint(),
        "-private-key", str(workdir / "key.pem"),
        "-certificate", str(workdir / "cert.pem"),
        *args,
    ]  # fmt: skip
    # scepclient has no CA option: Go reads the trust store from SSL_CERT_FILE.
    env = None if trust is None else {**os.environ, "SSL_CERT_FILE": str(trust)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)


def _certificate(workdir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((workdir / "cert.pem").read_bytes())


def test_scepclient_enrols_then_renews_with_its_certificate(scep_serve: ScepServe, tmp_path: Path) -> None:
    challenge = scep_serve.challenge("--names", "*.lab.example.test", team="printers")
    enrolled = scepclient(scep_serve, tmp_path, "-challenge", challenge, "-cn", "p1.lab.example.test")
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    first = _certificate(tmp_path)
    assert first.subject.rfc4514_string() == "CN=p1.lab.example.test"
    record = scep_serve.inventory(first)
    assert (record["source"], record["team"]) == ("scep", "printers")

    # With cert.pem present scepclient sends a RenewalReq signed by it (same key, and the
    # same key-derived transactionID as the enrolment).
    renewed = scepclient(scep_serve, tmp_path, "-cn", "p1.lab.example.test")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = _certificate(tmp_path)
    assert second.serial_number != first.serial_number
    assert second.subject == first.subject and second.public_key() == first.public_key()
    assert scep_serve.inventory(second)["team"] == "printers"


def test_scepclient_is_refused_a_name_its_challenge_does_not_allow(
    scep_serve: ScepServe, tmp_path: Path
) -> None:
    challenge = scep_serve.challenge("--names", "*.lab.example.test")
    refused = scepclient(scep_serve, tmp_path, "-challenge", challenge, "-cn", "www.example.test")
    assert refused.returncode != 0
    assert "failInfo: badRequest" in refused.stdout + refused.stderr
    assert not (tmp_path / "cert.pem").exists()


def test_scepclient_with_a_wrong_challenge_gets_bad_request(scep_serve: ScepServe, tmp_path: Path) -> None:
    refused = scepclient(scep_serve, tmp_path, "-challenge", "0123456789ab-nope", "-cn", "x.lab.example.test")
    assert "failInfo: badRequest" in refused.stdout + refused.stderr


def test_scepclient_enrols_over_https_verifying_the_listener(scep_serve: ScepServe, tmp_path: Path) -> None:
    # /scep is served on the HTTPS listener too; the client verifies it against certfleet's
    # root (fetched over plain HTTP, as a device is provisioned with it)
    root = scep_serve.server.root_pem(tmp_path / "root.pem")
    url = f"{scep_serve.server.https}/scep"
    challenge = scep_serve.challenge(team="kiosks")
    enrolled = scepclient(
        scep_serve, tmp_path, "-challenge", challenge, "-cn", "k1.example.test", url=url, trust=root
    )
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    record = scep_serve.inventory(_certificate(tmp_path))
    assert (record["source"], record["team"]) == ("scep", "kiosks")
    # ... and really verified it: with only the public roots the handshake fails
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = scepclient(
        scep_serve,
        elsewhere,
        "-challenge",
        scep_serve.challenge(team="kiosks"),
        "-cn",
        "k2.example.test",
        url=url,
        trust=Path("/etc/ssl/certs/ca-certificates.crt"),
    )
    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in refused.stdout + refused.stderr
    assert not (elsewhere / "cert.pem").exists()
