"""Trust stores on a host, end to end: a host tree with a Debian system bundle, a Java
cacerts in JKS and one in PKCS#12 (made by keytool), an NSS database (made by certutil) and
a certifi bundle; ``certfleet scan files`` lists their roots in the inventory with their
locations, and ``certfleet trust report`` names the roots no discovered leaf chains to."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.peers import CERTFLEET, CertfleetServer, agent_yaml, certfleet, clean_env
from tests.conftest import Cli
from tests.discovery.pki import Pki, pem
from tests.discovery.truststore_fixtures import java_cacerts, nss_database
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration


def _host(root: Path) -> dict[str, Pki]:
    """Given a host whose leaf chains to Used Root; every other root is trusted somewhere
    and anchors nothing; Nss Intermediate is in NSS without C/T trust."""
    pkis = {name: Pki(name) for name in ("Used", "Bundle Only", "Jks", "Pkcs12", "Nss", "Certifi", "Soon")}
    soon = pkis["Soon"]
    soon.root.cert = soon._build(  # a root expiring in ten days
        soon.root.cert.subject,
        soon.root.cert.subject,
        soon.root.key.public_key(),
        soon.root.key,
        days=10,
        ca=True,
        path_length=1,
    )
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(pem(pkis["Used"].root.cert, pkis["Bundle Only"].root.cert, soon.root.cert))
    java_cacerts(
        root / "etc/ssl/certs/java/cacerts", {"used": pkis["Used"].root.cert, "jks": pkis["Jks"].root.cert}
    )
    java_cacerts(
        root / "usr/lib/jvm/java-17/lib/security/cacerts", {"p12": pkis["Pkcs12"].root.cert}, "PKCS12"
    )
    nss_database(
        root / "etc/pki/nssdb",
        {
            "Nss Root": (pkis["Nss"].root.cert, "C,,"),
            "Nss Intermediate": (pkis["Nss"].intermediate.cert, "c,,"),
        },
    )
    certifi = root / "opt/app/lib/python3.11/site-packages/certifi/cacert.pem"
    certifi.parent.mkdir(parents=True)
    certifi.write_bytes(pem(pkis["Certifi"].root.cert))
    used = pkis["Used"]
    site = root / "srv/tls/site.pem"
    site.parent.mkdir(parents=True)
    site.write_bytes(pem(used.leaf(["www.trust.test"]).cert, used.intermediate.cert))
    return pkis


@pytest.fixture(scope="module")
def host_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Pki]]:
    """Made once (keytool starts a JVM per store); each test copies it."""
    root = tmp_path_factory.mktemp("trust") / "host"
    return root, _host(root)


@pytest.fixture
def host(host_tree: tuple[Path, dict[str, Pki]], tmp_path: Path) -> Path:
    copy = tmp_path / "host"
    shutil.copytree(host_tree[0], copy)
    return copy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertfleetServer]:
    running = CertfleetServer(one_worker(tmp_path_factory.mktemp("trust-server") / "data"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _subjects(roots: list[dict[str, object]]) -> set[str]:
    return {str(r["subject"]).removeprefix("CN=").removesuffix(" Root") for r in roots}


def test_a_scan_lists_every_trusted_root_and_the_report_names_the_unused(cli: Cli, host: Path) -> None:
    assert cli("init").exit_code == 0

    # When the host's tree is scanned like any other, with its name
    scan = cli("scan", "files", str(host), "--host", "web-1", "--format", "json", "--quiet")
    assert scan.exit_code == 0, scan.stderr
    stores = json.loads(scan.stdout)["trust_stores"]
    assert (stores["host"], stores["stores_read"], stores["stores_failed"]) == ("web-1", 5, 0)
    assert stores["roots"] == 7  # the Nss Intermediate (trust c,,) is no anchor

    # Then every root is in the inventory, with where it is trusted
    report = cli("trust", "report", "--format", "json", "--horizon", "30")
    assert report.exit_code == 0, report.stderr
    document = json.loads(report.stdout)
    assert _subjects(document["roots"]) == {"Used", "Bundle Only", "Jks", "Pkcs12", "Nss", "Certifi", "Soon"}
    used = next(r for r in document["roots"] if r["subject"] == "CN=Used Root")
    assert used["leaves"] == 1 and used["hosts"] == ["web-1"]
    assert sorted(loc["store"] for loc in used["locations"]) == ["java", "system"]
    # And the unused ones are named, the used one is not
    assert _subjects(document["unused_roots"]) == {"Bundle Only", "Jks", "Pkcs12", "Nss", "Certifi", "Soon"}
    assert document["issuers"] == [{"team": "(no team)", "issuer": "CN=Used Intermediate", "leaves": 1}]
    assert _subjects(document["expiring_roots"]) == {"Soon"}
    assert document["expiring_roots"][0]["hosts"] == ["web-1"]
    inventory = json.loads(cli("inventory", "list", "--format", "json").stdout)
    assert {"CN=Nss Root", "CN=Pkcs12 Root", "CN=Certifi Root"} <= {c["subject"] for c in inventory}
    table = cli("trust", "report")
    assert "Trusted but never used" in table.stdout and "Bundle Only Root" in table.stdout


def test_a_root_taken_out_of_a_store_is_gone_after_the_next_read(
    cli: Cli, host: Path, host_tree: tuple[Path, dict[str, Pki]]
) -> None:
    pkis = host_tree[1]
    assert cli("init").exit_code == 0
    assert cli("scan", "files", "--trust-stores", "--root", str(host), "--host", "web-2", "-q").exit_code == 0
    bundle = host / "etc/ssl/certs/ca-certificates.crt"
    bundle.write_bytes(pem(pkis["Used"].root.cert))
    assert cli("scan", "files", "--trust-stores", "--root", str(host), "--host", "web-2", "-q").exit_code == 0
    document = json.loads(cli("trust", "report", "--format", "json").stdout)
    bundle_only = {r["subject"] for r in document["roots"]}
    assert "CN=Bundle Only Root" not in bundle_only and "CN=Jks Root" in bundle_only


def test_issuers_policy_does_not_approve_are_named(cli: Cli, host: Path, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rules:\n  - name: approved-cas\n    scope: inventory\n    allowed_issuers: [certfleet]\n"
    )
    assert cli("policy", "apply", str(policy)).exit_code == 0
    assert cli("scan", "files", str(host), "-q").exit_code == 0
    document = json.loads(cli("trust", "report", "--format", "json").stdout)
    [finding] = document["unapproved_issuers"]
    assert (finding["issuer"], finding["leaves"]) == ("CN=Used Intermediate", 1)
    assert finding["reason"].startswith("approved-cas: issuer CN=Used Intermediate is not trusted")


def test_bad_report_options_are_one_line(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    bad = cli("trust", "report", "--horizon", "-1")
    assert bad.exit_code == 2 and "horizon must be between 0 and 36500 days" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_an_agent_reports_its_hosts_stores_to_a_real_server(
    server: CertfleetServer, host: Path, host_tree: tuple[Path, dict[str, Pki]], tmp_path: Path
) -> None:
    """Given an enrolled agent (report_trust_stores is on by default), when it runs, the server records
    the roots of its host's stores under its host name; a store changed is reported again."""
    state, tls = tmp_path / "state", tmp_path / "tls"
    tls.mkdir()
    server.enroll(server.join_token("db-1", "db-1.trust.test", team="data"), state)
    config = agent_yaml(
        tmp_path / "agent.yaml",
        f"""\
server: {server.https}
allowed_dirs: [{tls}]
trust_store_root: {host}
certificates:
  - name: db
    names: [db-1.trust.test]
    files: {{key: {tls}/db.key, fullchain: {tls}/db.crt}}
""",
    )
    run = ["agent", "run", "--config", str(config), "--once", "--state-dir", str(state)]
    assert certfleet(*run).returncode == 0
    report = server.api("/api/v1/trust/report")
    assert _subjects(report["roots"]) == {
        "Used",
        "Bundle Only",
        "Jks",
        "Pkcs12",
        "Nss",
        "Certifi",
        "Soon",
    }
    assert {h for r in report["roots"] for h in r["hosts"]} == {"db-1"}

    # Then: an unchanged host sends nothing; a root taken out is gone after the next run
    assert certfleet(*run).returncode == 0
    (host / "etc/ssl/certs/ca-certificates.crt").write_bytes(pem(host_tree[1]["Used"].root.cert))
    assert certfleet(*run).returncode == 0
    after = server.api("/api/v1/trust/report")
    assert "CN=Bundle Only Root" not in {r["subject"] for r in after["roots"]}
    entries = server.api("/api/v1/audit?limit=1000")["items"]
    reports = [e for e in entries if e["action"] == "discovery.trust-stores"]
    assert [e["actor"] for e in reports] == ["agent:db-1", "agent:db-1"]  # three runs, two changes

    # And a logged-in client's `trust report` is the server's report
    (tmp_path / "token").write_text(server.admin_token)
    env = clean_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    login = [CERTFLEET, "login", server.https, "--ca-fingerprint", server.root_fingerprint(),
             "--token-file", str(tmp_path / "token")]  # fmt: skip
    assert subprocess.run(login, env=env, capture_output=True, check=False).returncode == 0
    remote = subprocess.run(
        [CERTFLEET, "trust", "report", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["roots"] == after["roots"]


def test_an_agent_with_trust_store_system_trusts_certfleets_root_before_deploying_from_it(
    server: CertfleetServer, tmp_path: Path
) -> None:
    """Given an agent with trust_store: system (the real update-ca-certificates, pointed at
    the test's own tree), when it runs, certfleet's root is in the host's bundle and the
    deployed certificate verifies against that bundle alone; after `ca rotate` the leaf from
    the new intermediate verifies against the same bundle (the root it pre-distributed)."""
    etc, local = tmp_path / "etc/ssl/certs", tmp_path / "local-anchors"
    for folder in (etc, local, tmp_path / "dist", tmp_path / "hooks"):
        folder.mkdir(parents=True)
    (tmp_path / "ca-certificates.conf").write_text("# none\n")
    update = [
        "update-ca-certificates", "--fresh", "--certsconf", str(tmp_path / "ca-certificates.conf"),
        "--certsdir", str(tmp_path / "dist"), "--localcertsdir", str(local),
        "--etccertsdir", str(etc), "--hooksdir", str(tmp_path / "hooks"),
    ]  # fmt: skip
    state, tls = tmp_path / "state", tmp_path / "tls"
    tls.mkdir()
    server.enroll(server.join_token("app-1", "app-1.trust.test", team="app"), state)
    config = agent_yaml(
        tmp_path / "agent.yaml",
        f"""\
server: {server.https}
allowed_dirs: [{tls}]
trust_store: system
trust_anchors_dir: {local}
trust_update_command: {json.dumps(update)}
certificates:
  - name: app
    names: [app-1.trust.test]
    files: {{key: {tls}/app.key, cert: {tls}/app.crt, chain: {tls}/chain.pem}}
""",
    )

    def verifies() -> subprocess.CompletedProcess[str]:
        argv = ["openssl", "verify", "-CAfile", str(etc / "ca-certificates.crt"), "-untrusted",
                str(tls / "chain.pem"), str(tls / "app.crt")]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    run = ["agent", "run", "--config", str(config), "--once", "--state-dir", str(state)]
    assert certfleet(*run).returncode == 0
    [anchor] = [p.name for p in local.iterdir()]
    assert (
        anchor.startswith("certfleet-") and anchor[len("certfleet-") :][:16] == server.root_fingerprint()[:16]
    )
    assert verifies().returncode == 0, verifies().stdout + verifies().stderr

    before = (tls / "chain.pem").read_bytes()
    server.cli("ca", "rotate")
    assert certfleet(*run, "--force").returncode == 0
    assert (tls / "chain.pem").read_bytes() != before  # issued by the new intermediate
    assert [p.name for p in local.iterdir()] == [anchor]
    assert verifies().returncode == 0, verifies().stdout + verifies().stderr
