"""Each target format holds what its consumers read: checked with openssl and pyjks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jks
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.agent.config import FileTarget
from certfleet.agent.targets import Material, render
from certfleet.x509 import KeyType, load_certificates
from tests.agent.material import ThrowawayCa


@pytest.fixture(scope="module", params=[KeyType.EC_P256, KeyType.RSA_2048])
def material(request: pytest.FixtureRequest) -> Material:
    return ThrowawayCa().issue(key_type=request.param)


def target(kind: str, password: bytes | None = None) -> FileTarget:
    return FileTarget(kind, Path(f"/x/{kind}"), 0o600, password=password)


def test_pem_targets(material: Material) -> None:
    assert load_certificates(render(target("cert"), material)) == [material.certificate]
    assert load_certificates(render(target("chain"), material)) == list(material.chain)
    assert load_certificates(render(target("fullchain"), material)) == [material.certificate, *material.chain]
    combined = render(target("combined"), material)
    assert load_certificates(combined)[0] == material.certificate
    key = serialization.load_pem_private_key(combined, None)
    assert key.public_key() == material.certificate.public_key()
    assert render(target("key"), material).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_pkcs12_opens_with_its_password_in_cryptography_and_openssl(
    material: Material, tmp_path: Path
) -> None:
    data = render(target("pkcs12", b"p12-secret"), material)
    key, cert, extra = pkcs12.load_key_and_certificates(data, b"p12-secret")
    assert cert == material.certificate and list(extra) == list(material.chain)
    assert key is not None and key.public_key() == cert.public_key()
    path = tmp_path / "store.p12"
    path.write_bytes(data)
    good = subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-passin", "pass:p12-secret", "-nokeys", "-clcerts"],
        capture_output=True,
    )
    assert good.returncode == 0 and load_certificates(good.stdout) == [material.certificate]
    bad = subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-passin", "pass:wrong", "-nokeys"], capture_output=True
    )
    assert bad.returncode != 0


def test_jks_holds_the_key_entry_and_chain(material: Material) -> None:
    data = render(target("jks", b"changeit"), material)
    store = jks.KeyStore.loads(data, "changeit")
    entry = store.private_keys["certfleet"]
    assert entry.is_decrypted()
    certs = [c[1] for c in entry.cert_chain]
    expected = [c.public_bytes(serialization.Encoding.DER) for c in (material.certificate, *material.chain)]
    assert certs == expected
    key = serialization.load_der_private_key(entry.pkey_pkcs8, None)
    assert key.public_key() == material.certificate.public_key()
    with pytest.raises(jks.util.KeystoreSignatureException):
        jks.KeyStore.loads(data, "wrong")


def test_java_keytool_reads_the_jks_and_the_pkcs12(material: Material, tmp_path: Path) -> None:
    """Java's own keytool (Debian's openjdk) is the consumer that matters."""
    for kind, store_type in (("jks", "JKS"), ("pkcs12", "PKCS12")):
        path = tmp_path / f"store.{kind}"
        path.write_bytes(render(target(kind, b"changeit"), material))
        listed = subprocess.run(
            [
                "keytool",
                "-list",
                "-v",
                "-keystore",
                str(path),
                "-storetype",
                store_type,
                "-storepass",
                "changeit",
            ],
            capture_output=True,
            text=True,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "Entry type: PrivateKeyEntry" in listed.stdout
        assert "Certificate chain length: 2" in listed.stdout


def test_a_key_never_travels_with_another_keys_certificate() -> None:
    ca = ThrowawayCa()
    one, two = ca.issue(), ca.issue()
    with pytest.raises(ValueError, match="does not match"):
        Material(one.key, two.certificate, two.chain)
