"""The whole issuance flow over HTTP: account, order, http-01, finalize, download."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from certfleet.x509 import to_pem
from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.peers import openssl_verify


def test_directory_lists_every_resource_and_meta(acme: AcmeHarness) -> None:
    directory = acme.directory
    for field in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"):
        assert directory[field].startswith(f"{acme.base_url}/acme/")
    meta = directory["meta"]
    assert meta["externalAccountRequired"] is False
    assert "tls-server" in meta["profiles"]
    assert meta["termsOfService"] == f"{acme.base_url}/acme/terms"
    assert meta["website"] == f"{acme.base_url}/"
    assert acme.client.http.get(meta["termsOfService"]).status_code == 200


def test_order_validate_finalize_download(acme: AcmeHarness, tmp_path: Path) -> None:
    account = acme.client.new_account()
    order_url, order = acme.ready_order(account, ["flow.example.test", "www.flow.example.test"])
    response = acme.finalize(account, order, ["flow.example.test", "www.flow.example.test"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "valid"
    cert_url = response.json()["certificate"]
    download = acme.client.post_as_get(account, cert_url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pem-certificate-chain"
    chain = x509.load_pem_x509_certificates(download.content)
    assert len(chain) == 2
    leaf = chain[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["flow.example.test", "www.flow.example.test"]
    (tmp_path / "chain.pem").write_bytes(download.content)
    (tmp_path / "leaf.pem").write_text(to_pem([leaf]))
    (tmp_path / "root.pem").write_text(to_pem([acme.platform.authorities.root().certificate]))
    verify = openssl_verify(tmp_path / "root.pem", tmp_path / "leaf.pem", tmp_path / "chain.pem")
    assert verify.returncode == 0, verify.stderr
    record = acme.platform.inventory.find(format(leaf.serial_number, "x"))
    assert record.source.value == "issued"
    assert record.team is None
    assert acme.get(account, order_url)["certificate"] == cert_url
