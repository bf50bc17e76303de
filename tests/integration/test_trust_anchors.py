"""A new root reaches the agents before anything it signs: on a real ``certfleet serve``, an
agent with ``trust_store: system`` (the real update-ca-certificates, pointed at the test's
own tree) enrolled on the classic hierarchy learns the root ``certfleet ca create`` made
from the authenticated ``GET /api/v1/agent/trust-anchors``, and its next run writes it into
the anchors folder and the bundle before the first leaf chaining to it is deployed. (A
hostile unauthenticated CA bundle with a second root stays refused: see
tests/integration/test_agent_trust.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.x509 import describe_public_key, fingerprint_sha256, load_certificates
from tests.agent.peers import CertfleetServer, agent_yaml, certfleet
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertfleetServer]:
    running = CertfleetServer(one_worker(tmp_path_factory.mktemp("anchors-server") / "data"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _update_command(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    etc, local = tmp_path / "etc/ssl/certs", tmp_path / "local-anchors"
    for folder in (etc, local, tmp_path / "dist", tmp_path / "hooks"):
        folder.mkdir(parents=True)
    (tmp_path / "ca-certificates.conf").write_text("# none\n")
    update = [
        "update-ca-certificates", "--fresh", "--certsconf", str(tmp_path / "ca-certificates.conf"),
        "--certsdir", str(tmp_path / "dist"), "--localcertsdir", str(local),
        "--etccertsdir", str(etc), "--hooksdir", str(tmp_path / "hooks"),
    ]  # fmt: skip
    return local, etc / "ca-certificates.crt", update


def _fingerprints(bundle: Path) -> set[str]:
    return {fingerprint_sha256(c) for c in load_certificates(bundle.read_bytes())}


def test_a_new_root_is_in_the_hosts_store_before_the_first_leaf_from_it(
    server: CertfleetServer, tmp_path: Path
) -> None:
    local, bundle, update = _update_command(tmp_path)
    state, tls = tmp_path / "state", tmp_path / "tls"
    tls.mkdir()
    server.enroll(server.join_token("pq-1", "*.anchors.test", team="web"), state)
    classic = server.root_fingerprint()
    body = f"""\
server: {server.https}
allowed_dirs: [{tls}]
report_trust_stores: false
trust_store: system
trust_anchors_dir: {local}
trust_update_command: {json.dumps(update)}
certificates:
  - name: app
    names: [app.anchors.test]
    files: {{key: {tls}/app.key, fullchain: {tls}/app.crt}}
"""
    config = agent_yaml(tmp_path / "agent.yaml", body)
    run = ["agent", "run", "--config", str(config), "--once", "--state-dir", str(state)]
    assert certfleet(*run).returncode == 0
    assert [p.name for p in local.iterdir()] == [f"certfleet-{classic[:16]}.crt"]

    # Given a post-quantum hierarchy beside the classic one
    server.cli("ca", "create", "--key-type", "ml-dsa-65", "--name", "PQ Root")
    # When the agent's next run also holds a certificate under the PQ profile, the reload
    # command copies the host's bundle as it is at the moment that certificate is deployed
    seen = tmp_path / "bundle-at-deploy.crt"
    config = agent_yaml(
        tmp_path / "agent.yaml",
        body
        + f"""\
  - name: pq
    names: [pq.anchors.test]
    profile: internal-mtls-pq
    key_type: ml-dsa-65
    files: {{key: {tls}/pq.key, fullchain: {tls}/pq.crt}}
    reload: [cp, {bundle}, {seen}]
""",
    )
    assert certfleet(*run).returncode == 0

    # Then the PQ root is in the anchors folder and in the bundle, and was there already when
    # the first leaf chaining to it was deployed
    leaf, *chain = load_certificates((tls / "pq.crt").read_bytes())
    [pq_root] = [
        c
        for c in load_certificates(state.joinpath("trust-anchors.pem").read_bytes())
        if fingerprint_sha256(c) != classic
    ]
    assert pq_root.subject.rfc4514_string().startswith("CN=PQ Root")
    assert describe_public_key(leaf.public_key()).label == "ml-dsa-65"
    assert chain[-1].issuer == pq_root.subject
    pq_fp = fingerprint_sha256(pq_root)
    assert sorted(p.name for p in local.iterdir()) == sorted(
        f"certfleet-{fp[:16]}.crt" for fp in (classic, pq_fp)
    )
    assert {classic, pq_fp} <= _fingerprints(bundle)
    assert {classic, pq_fp} <= _fingerprints(seen)
    # and it never became a trust anchor for the server itself
    assert pq_fp not in {fingerprint_sha256(c) for c in load_certificates((state / "ca.pem").read_bytes())}
