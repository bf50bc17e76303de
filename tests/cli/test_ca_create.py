"""``certfleet init --key-type ml-dsa-65`` and ``certfleet ca create``: a parallel hierarchy
beside the first, and its refusals in one line with exit 2 (issue 17)."""

from __future__ import annotations

import json

from cryptography import x509
from cryptography.x509.oid import SignatureAlgorithmOID

from tests.conftest import Cli


def test_create_adds_a_root_and_issuing_ca_beside_the_first(cli: Cli) -> None:
    assert cli("init", "--ca-name", "Classic").exit_code == 0

    created = cli("ca", "create", "--key-type", "ml-dsa-65", "--name", "PQ Root", "--format", "json")

    assert created.exit_code == 0, created.stderr
    root, issuing = json.loads(created.stdout)
    assert (root["role"], root["key"], root["name"]) == ("root", "ml-dsa-65", "PQ Root Root CA")
    assert (issuing["role"], issuing["key"], issuing["parent"]) == ("intermediate", "ml-dsa-65", root["id"])
    listed = json.loads(cli("ca", "list", "--format", "json").stdout)
    assert [(c["role"], c["key"]) for c in listed] == [
        ("root", "ec-p256"),
        ("intermediate", "ec-p256"),
        ("root", "ml-dsa-65"),
        ("intermediate", "ml-dsa-65"),
    ]
    # `ca root` still prints the first (default) hierarchy's root.
    default_root = x509.load_pem_x509_certificate(cli("ca", "root").stdout.encode())
    assert default_root.subject.rfc4514_string() == "CN=Classic Root CA,O=Classic"
    pq = json.loads(cli("ca", "show", root["id"], "--format", "json").stdout)
    pq_root = x509.load_pem_x509_certificate(pq["certificate_pem"].encode())
    assert pq_root.signature_algorithm_oid == SignatureAlgorithmOID.ML_DSA_65


def test_refusals_are_one_line_with_exit_2_and_change_nothing(cli: Cli) -> None:
    before_init = cli("ca", "create", "--name", "PQ Root")
    assert before_init.exit_code == 2
    assert "run 'certfleet init' first" in before_init.stderr
    assert len(before_init.stderr.splitlines()) == 1
    assert cli("init").exit_code == 0
    assert cli("ca", "create", "--name", "PQ Root").exit_code == 0
    listed = cli("ca", "list", "--format", "json").stdout

    bad_type = cli("ca", "create", "--key-type", "ml-dsa-128", "--name", "Other")
    again = cli("ca", "create", "--key-type", "ml-dsa-44", "--name", "pq root")

    assert bad_type.exit_code == 2
    assert bad_type.stderr.startswith("error: unknown key type 'ml-dsa-128': expected one of ec-p256")
    assert len(bad_type.stderr.splitlines()) == 1
    assert (again.exit_code, again.stderr) == (2, "error: a CA hierarchy named 'pq root' already exists\n")
    assert cli("ca", "list", "--format", "json").stdout == listed


def test_init_makes_an_ml_dsa_hierarchy(cli: Cli) -> None:
    assert cli("init", "--key-type", "ml-dsa-65").exit_code == 0
    listed = json.loads(cli("ca", "list", "--format", "json").stdout)
    hierarchy = [c["key"] for c in listed if c["role"] in ("root", "intermediate")]
    assert hierarchy == ["ml-dsa-65", "ml-dsa-65"]
    # and the HTTPS listener's classic root (tests/cli/test_init.py, test_listener_root.py)
    assert [c["key"] for c in listed if c["role"] == "tls-root"] == ["ec-p256"]
    root = x509.load_pem_x509_certificate(cli("ca", "root").stdout.encode())
    assert root.signature_algorithm_oid == SignatureAlgorithmOID.ML_DSA_65
