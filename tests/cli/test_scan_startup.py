"""What `certfleet scan net` imports (issue 11: the discovery CLI at 10x sslyze --certinfo,
start-up included): a real scan of a loopback TLS endpoint in a fresh interpreter loads the
discovery service, the store's discovery, certificate, audit and outbox repositories and
nothing of the other services, the ACME protocol, the file scanner or the web stack; and
records what it always did. No test here measures time (bench/scan.py does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.x509 import fingerprint_sha256
from tests.cli.test_startup import packages, run_fresh
from tests.conftest import Cli
from tests.discovery.pki import Pki, key_pem, pem
from tests.discovery.servers import ThreadedServer, tls

# Modules a network scan and its inventory write never use: every other service (the
# services package used to import them all), the repositories the store's unit of work
# used to build for every transaction (the ACME one imports the ACME protocol package),
# the file scanner with its formats and keystores, and the trust report's policy engine.
NOT_FOR_A_NET_SCAN = {
    "certfleet.protocols.acme",
    "certfleet.store._acme",
    "certfleet.store._agent",
    "certfleet.store._lifecycle",
    "certfleet.store._issuance_ledger",
    "certfleet.store._revocation",
    "certfleet.store._policy",
    "certfleet.store._est",
    "certfleet.services.issuance",
    "certfleet.services.authorities",
    "certfleet.services.inventory",
    "certfleet.services.tokens",
    "certfleet.services.audit",
    "certfleet.services.notifications",
    "certfleet.services.trust_report",
    "certfleet.services.policy",
    "certfleet.services._trust_record",
    "certfleet.discovery.files",
    "certfleet.discovery.formats",
    "certfleet.discovery.keystores",
    "certfleet.discovery.truststores",
    "certfleet.policy",
    "certfleet.agents",
    "certfleet.revocation",
    "certfleet.lifecycle.repositories",
    # The handshakes run in the scanner process (cli._scan_child), which parses nothing:
    # the command loads neither the scanner nor its probes.
    "certfleet.discovery.scanner",
    "certfleet.discovery.probes",
}
WEB_AND_PROTOCOL_PACKAGES = {
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "alembic",
    "josepy",
    "acme",
    "pydantic",
}


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[ThreadedServer, set[str], Path]]:
    """A TLS server on a loopback port presenting a leaf and its intermediate, their
    fingerprints, and the PEM file of the root that issued them (given with --trust)."""
    pki = Pki("Startup")
    leaf = pki.leaf(["127.0.0.1", "startup.test"])
    (tmp_path / "chain.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    (tmp_path / "key.pem").write_bytes(key_pem(leaf.key))
    (tmp_path / "root.pem").write_bytes(pem(pki.root.cert))
    server = tls(tmp_path / "chain.pem", tmp_path / "key.pem")
    try:
        presented = {fingerprint_sha256(leaf.cert), fingerprint_sha256(pki.intermediate.cert)}
        yield server, presented, tmp_path / "root.pem"
    finally:
        server.stop()


def test_a_real_net_scan_loads_the_discovery_path_only(
    initialized: Cli, endpoint: tuple[ThreadedServer, set[str], Path]
) -> None:
    server, presented, root = endpoint
    where = ["--data-dir", str(initialized.data_dir), "--db", initialized.db_url]

    code, output, loaded = run_fresh(
        "scan", "net", server.address, "--trust", str(root), "--quiet", "--format", "json", *where
    )

    assert code == 0, output
    report = json.loads(output[output.index("{") : output.rindex("}") + 1])
    [outcome] = report["outcomes"]
    assert outcome["status"] == "ok", outcome
    assert len(outcome["chain"]) == 2
    # Recorded as before: the leaf and the intermediate are new, the chain is trusted (the
    # root came with --trust), and the leaf's name matches the address scanned.
    assert report["scan"]["certificates_new"] == 2, report["scan"]
    assert report["findings"] == [], report["findings"]
    assert loaded & NOT_FOR_A_NET_SCAN == set(), sorted(loaded & NOT_FOR_A_NET_SCAN)
    assert packages(loaded) & WEB_AND_PROTOCOL_PACKAGES == set(), sorted(packages(loaded))
    # What it does use is there (the check above would pass on a scan that did nothing).
    assert {
        "certfleet.services.discovery",
        "certfleet.store._discovery",
        "certfleet.discovery.trust",
    } <= loaded

    listed = initialized("inventory", "list", "--format", "json")
    assert {row["fingerprint_sha256"] for row in json.loads(listed.stdout)} == presented


def test_scan_net_help_opens_no_store(tmp_path: Path) -> None:
    code, output, loaded = run_fresh(
        "--data-dir", str(tmp_path / "none"), "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "scan", "net", "--help",
    )  # fmt: skip

    assert code == 0 and "--concurrency" in output, output
    assert "sqlalchemy" not in packages(loaded), sorted(packages(loaded))
    assert loaded & (NOT_FOR_A_NET_SCAN | {"certfleet.store", "certfleet.services"}) == set(), sorted(loaded)
    assert not (tmp_path / "none").exists()
