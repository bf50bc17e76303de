"""Discovery against one real nginx serving a matrix of certificates.

Each HTTPS endpoint is built to be wrong in exactly one way (or in none), and the scan must
report exactly that finding for it: no more, no less. HTTP on 127.0.0.1 redirects to HTTPS,
on 127.0.0.2 it does not; every endpoint sends HSTS except ``hsts-off``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.x509 import KeyType, generate_private_key
from tests.api.conftest import ApiClient
from tests.conftest import Cli, FakeClock, make_platform
from tests.discovery.nginx import Nginx, tls_server
from tests.discovery.pki import Issued, Pki, key_pem, pem, rsa_key
from tests.ports import free_ports

pytestmark = pytest.mark.integration

LOW = "ssl_ciphers DEFAULT:@SECLEVEL=0;"  # OpenSSL 3 refuses to load RSA-1024 or SHA-1 otherwise

EXPECTED: dict[str, set[str]] = {
    "good": set(),
    "ours": set(),  # issued by certfleet's own CA: trusted without --trust
    "expired": {"expired"},
    "expiring": {"expiring"},
    "long-validity": {"long-validity"},
    "self-signed": {"self-signed"},
    "missing-intermediate": {"incomplete-chain"},
    "untrusted": {"untrusted-issuer"},
    "wrong-name": {"hostname-mismatch"},
    "sha1": {"weak-signature"},
    "rsa1024": {"weak-key"},
    "legacy-tls": {"legacy-tls"},
    "hsts-off": {"no-hsts"},
    "no-redirect": {"no-https-redirect"},
}


@dataclass
class Matrix:
    nginx: Nginx
    data_dir: Path
    db_url: str
    root_pem: Path
    http_port: int
    sni_port: int
    endpoints: dict[str, str] = field(default_factory=dict)
    leaves: dict[str, Issued] = field(default_factory=dict)
    ours_serial: str = ""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    base = tmp_path_factory.mktemp("nginx-matrix")
    data_dir = base / "data"
    db_url = f"sqlite:///{data_dir / 'certfleet.db'}"
    platform = make_platform(data_dir, db_url, FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0)))
    platform.authorities.initialize("Matrix", KeyType.EC_P256, actor="test")
    ours_key = generate_private_key(KeyType.EC_P256)
    ours = platform.issuance.issue(
        IssuanceRequest("tls-server", ours_key.public_key(), ("127.0.0.1",)), actor="test"
    )
    platform.close()

    pki = Pki("Matrix")
    other = Pki("Stranger")
    now = pki.now
    certs = base / "certs"
    certs.mkdir()
    leaves = {
        "good": pki.leaf(["127.0.0.1"]),
        "expired": pki.leaf(
            ["127.0.0.1"], not_before=now - dt.timedelta(days=91), not_after=now - dt.timedelta(days=1)
        ),
        "expiring": pki.leaf(
            ["127.0.0.1"], not_before=now - dt.timedelta(days=80), not_after=now + dt.timedelta(days=10)
        ),
        "long-validity": pki.leaf(["127.0.0.1"], days=500),
        "self-signed": pki.leaf(["127.0.0.1"], self_signed=True),
        "missing-intermediate": pki.leaf(["127.0.0.1"]),
        "untrusted": other.leaf(["127.0.0.1"]),
        "wrong-name": pki.leaf(["other.example.test"]),
        "sha1": pki.sha1_leaf(["127.0.0.1"], base / "sha1"),
        "rsa1024": pki.leaf(["127.0.0.1"], key=rsa_key(1024)),
        "legacy-tls": pki.leaf(["127.0.0.1"]),
        "hsts-off": pki.leaf(["127.0.0.1"]),
        "no-redirect": pki.leaf(["127.0.0.2"]),
        "sni-a": pki.leaf(["a.example.test"]),
        "sni-b": pki.leaf(["b.example.test"]),
    }
    chains = {
        name: pem(issued.cert)
        if name in ("self-signed", "missing-intermediate")
        else pem(issued.cert, pki.intermediate.cert)
        for name, issued in leaves.items()
    }
    chains["untrusted"] = pem(leaves["untrusted"].cert, other.intermediate.cert)
    for name, issued in leaves.items():
        (certs / f"{name}.crt").write_bytes(chains[name])
        (certs / f"{name}.key").write_bytes(key_pem(issued.key))
    (certs / "ours.crt").write_bytes(pem(*ours.issued.fullchain))
    (certs / "ours.key").write_bytes(key_pem(ours_key))
    root_pem = certs / "root.pem"
    root_pem.write_bytes(pem(pki.root.cert))

    ports = iter(free_ports(len(EXPECTED) + 2))
    http_port = next(ports)
    extra = {"sha1": LOW, "rsa1024": LOW, "legacy-tls": LOW}
    servers = [
        f"  server {{ listen 127.0.0.1:{http_port};"
        " location / { return 301 https://$host$request_uri; } }\n",
        f'  server {{ listen 127.0.0.2:{http_port}; location / {{ return 200 "plain\\n"; }} }}\n',
    ]
    endpoints: dict[str, str] = {}
    listens: list[tuple[str, int]] = [("127.0.0.1", http_port), ("127.0.0.2", http_port)]
    for name in EXPECTED:
        host = "127.0.0.2" if name == "no-redirect" else "127.0.0.1"
        port = next(ports)
        endpoints[name] = f"{host}:{port}"
        listens.append((host, port))
        servers.append(
            tls_server(
                f"{host}:{port}",
                certs / f"{name}.crt",
                certs / f"{name}.key",
                extra=extra.get(name, ""),
                hsts=name != "hsts-off",
                protocols="TLSv1" if name == "legacy-tls" else "TLSv1.2 TLSv1.3",
            )
        )
    sni_port = next(ports)
    listens.append(("127.0.0.1", sni_port))
    for name, server_name in (("sni-a", "a.example.test"), ("sni-b", "b.example.test")):
        servers.append(
            tls_server(
                f"127.0.0.1:{sni_port}", certs / f"{name}.crt", certs / f"{name}.key", name=server_name
            )
        )
    nginx = Nginx(base / "nginx", servers, listens)
    nginx.start()
    try:
        yield Matrix(
            nginx, data_dir, db_url, root_pem, http_port, sni_port, endpoints, leaves, ours.record.serial
        )
    finally:
        nginx.stop()


@pytest.fixture
def mcli(capsys: pytest.CaptureFixture[str], matrix: Matrix) -> Cli:
    return Cli(capsys, matrix.data_dir, matrix.db_url)


def _scan_matrix(mcli: Cli, matrix: Matrix, *extra: str) -> dict[str, object]:
    result = mcli(
        "scan",
        "net",
        *matrix.endpoints.values(),
        "--trust",
        str(matrix.root_pem),
        "--http-checks",
        "--http-port",
        str(matrix.http_port),
        "--timeout",
        "5",
        "--format",
        "json",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_each_endpoint_gets_exactly_its_findings(mcli: Cli, matrix: Matrix) -> None:
    report = _scan_matrix(mcli, matrix)
    outcomes = {o["target"]: o for o in report["outcomes"]}  # type: ignore[index, union-attr]
    got = {name: set(outcomes[address]["findings"]) for name, address in matrix.endpoints.items()}
    assert got == EXPECTED
    for name, address in matrix.endpoints.items():
        assert outcomes[address]["status"] == "ok", (name, outcomes[address]["reason"])
    # The full presented chain is recorded: leaf and intermediate, or the leaf alone.
    assert len(outcomes[matrix.endpoints["good"]]["chain"]) == 2
    assert len(outcomes[matrix.endpoints["missing-intermediate"]]["chain"]) == 1
    assert outcomes[matrix.endpoints["legacy-tls"]]["tls_version"] == "TLSv1"
    assert outcomes[matrix.endpoints["good"]]["tls_version"] == "TLSv1.3"


def test_fail_on_matches_severity(mcli: Cli, matrix: Matrix) -> None:
    # expired is critical: --fail-on critical exits 1 ...
    failing = mcli(
        "scan",
        "net",
        matrix.endpoints["expired"],
        "--trust",
        str(matrix.root_pem),
        "--fail-on",
        "critical",
        "--quiet",
    )
    assert failing.exit_code == 1, failing.stderr
    # ... while the good endpoint has nothing at or above info.
    clean = mcli(
        "scan",
        "net",
        matrix.endpoints["good"],
        "--trust",
        str(matrix.root_pem),
        "--fail-on",
        "info",
        "--quiet",
    )
    assert clean.exit_code == 0, clean.stderr
    assert "Summary" in clean.stdout


def test_sni_names_reach_their_virtual_hosts(mcli: Cli, matrix: Matrix) -> None:
    result = mcli(
        "scan",
        "net",
        f"127.0.0.1:{matrix.sni_port}",
        "--sni",
        "a.example.test",
        "--sni",
        "b.example.test",
        "--trust",
        str(matrix.root_pem),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    outcomes = {o["sni"]: o for o in json.loads(result.stdout)["outcomes"]}
    assert set(outcomes) == {"a.example.test", "b.example.test"}
    assert outcomes["a.example.test"]["chain"][0]["subject"] == "CN=a.example.test"
    assert outcomes["b.example.test"]["chain"][0]["subject"] == "CN=b.example.test"
    assert outcomes["a.example.test"]["findings"] == outcomes["b.example.test"]["findings"] == []


def test_discovered_certificates_show_in_inventory_and_api(mcli: Cli, matrix: Matrix) -> None:
    _scan_matrix(mcli, matrix, "--quiet")
    listed = mcli("inventory", "list", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    by_fp = {row["fingerprint_sha256"]: row for row in json.loads(listed.stdout)}
    good = matrix.leaves["good"].cert
    from certfleet.discovery import fingerprint

    assert by_fp[fingerprint(good)]["source"] == "discovered"
    ours = [row for row in by_fp.values() if row["serial"] == matrix.ours_serial]
    assert [row["source"] for row in ours] == ["issued"]  # ours keeps its source

    from certfleet.app import open_platform
    from certfleet.cli._common import settings_for

    platform: Platform = open_platform(settings_for(matrix.data_dir, matrix.db_url))
    try:
        client = ApiClient(platform)
        auth = {"Authorization": f"Bearer {client.token('admin', 'admin')}"}
        for name, serial in (("good", format(good.serial_number, "x")), ("ours", matrix.ours_serial)):
            response = client.get(f"/api/v1/certificates/{serial}/locations", headers=auth)
            assert response.status_code == 200, response.text
            places = {(loc["kind"], loc["location"], loc["present"]) for loc in response.json()["locations"]}
            assert ("endpoint", matrix.endpoints[name], True) in places
        expired = client.get("/api/v1/findings", params={"code": "expired"}, headers=auth).json()["items"]
        assert matrix.endpoints["expired"] in {f["location"] for f in expired}
        started = client.post(
            "/api/v1/scans",
            json={"targets": [matrix.endpoints["wrong-name"]], "trust_pem": matrix.root_pem.read_text()},
            headers=auth,
        )
        assert started.status_code == 202, started.text
        platform.scans.run_pending(wait=True)  # what the scheduler's `scans` job does on serve
        run = client.get(f"/api/v1/scans/{started.json()['id']}", headers=auth).json()
        assert (run["status"], run["succeeded"], run["findings"]) == ("completed", 1, 1)
        client.close()
    finally:
        platform.close()
