"""The PKCS#11 key backend against a real SoftHSM2 token made in a temporary directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from certfleet.ca import CaUrls, build_intermediate, build_root, build_spiffe_ca, ca_id_for
from certfleet.ca.errors import CaKeyError, KeyBackendUnavailable
from certfleet.ca.keys.pkcs11 import Pkcs11KeyBackend, read_pin
from certfleet.revocation import CertId, CertStatus, ResponseSigner, SingleAnswer, build_crl, build_response
from certfleet.revocation._crl import RevokedEntry
from certfleet.spiffe import SpiffeId
from certfleet.spiffe._jwt import JwtSvidClaims, key_id, sign_jwt_svid, validate_jwt_svid
from certfleet.x509 import KeyType

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "4711-hsm-pin"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="SoftHSM2 (Debian softhsm2) is not installed")


@dataclass(frozen=True)
class Token:
    tokens: Path  # SoftHSM2's directories.tokendir
    backend: Pkcs11KeyBackend

    def remove(self) -> None:
        self.tokens.rename(self.tokens.with_name("tokens.away"))

    def put_back(self) -> None:
        self.tokens.with_name("tokens.away").rename(self.tokens)


def init_token(directory: Path, label: str) -> dict[str, str]:
    """A fresh SoftHSM2 token in ``directory``; returns the environment that selects it."""
    tokens = directory / "tokens"
    tokens.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "so-" + PIN],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    env = init_token(tmp_path, "certfleet-test")
    monkeypatch.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
    return Token(tmp_path / "tokens", Pkcs11KeyBackend(MODULE, "certfleet-test", PIN, retry_seconds=0))


def token_private_keys(label: str) -> str:
    """What another process (OpenSC's pkcs11-tool) sees of the token's private keys."""
    return subprocess.run(
        [
            *("pkcs11-tool", "--module", str(MODULE), "--token-label", label, "--login", "--pin", PIN),
            *("--list-objects", "--type", "privkey"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.EC_P384, KeyType.RSA_2048])
def test_a_hierarchy_signed_in_the_token_verifies(token: Token, key_type: KeyType) -> None:
    # Given a root and an intermediate whose keys were generated inside the token
    root_key = token.backend.load(token.backend.create("root", key_type))
    inter_key = token.backend.load(token.backend.create("issuing", key_type))
    # When cryptography's builders sign through the seam
    root = build_root("HSM Test", root_key, NOW)
    inter = build_intermediate(
        "HSM Test", inter_key, root, root_key, ca_id_for(root), CaUrls("http://pki.example.com"), NOW
    )
    # Then the signatures verify with the token's public keys
    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)
    assert root.public_key() == root_key.public_key()
    assert inter.signature_hash_algorithm is not None
    expected = "sha384" if key_type is KeyType.EC_P384 else "sha256"
    assert inter.signature_hash_algorithm.name == expected


def test_the_spiffe_ca_is_signed_by_a_root_in_the_token(token: Token) -> None:
    root_key = token.backend.load(token.backend.create("root", KeyType.EC_P384))
    spiffe_key = token.backend.load(token.backend.create("spiffe-1", KeyType.EC_P256))
    root = build_root("HSM Test", root_key, NOW)
    urls = CaUrls("http://pki.example.com")
    trust_domain = "spiffe://example.org"
    spiffe_ca = build_spiffe_ca("HSM Test", trust_domain, spiffe_key, root, root_key, "r", urls, NOW)
    spiffe_ca.verify_directly_issued_by(root)
    assert spiffe_ca.public_key() == spiffe_key.public_key()


def test_crl_and_ocsp_responses_signed_in_the_token_verify(token: Token) -> None:
    key = token.backend.load(token.backend.create("root", KeyType.EC_P256))
    root = build_root("HSM Test", key, NOW)
    crl = x509.load_der_x509_crl(
        build_crl(
            issuer=root,
            key=key,
            entries=[RevokedEntry(1234, NOW)],
            number=7,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=1),
        )
    )
    assert crl.is_signature_valid(root.public_key())
    assert crl.get_revoked_certificate_by_serial_number(1234) is not None

    name_hash = hashlib.sha1(root.subject.public_bytes()).digest()
    key_hash = x509.SubjectKeyIdentifier.from_public_key(root.public_key()).digest
    signer = ResponseSigner(ca_id_for(root), root, key, delegated=False)
    answers = [
        SingleAnswer(CertId("sha1", name_hash, key_hash, serial), CertStatus.GOOD) for serial in (5, 6)
    ]
    for some in (answers[:1], answers):  # one SingleResponse, and several joined
        der = build_response(some, signer, this_update=NOW, next_update=NOW + dt.timedelta(hours=1))
        response = ocsp.load_der_ocsp_response(der)
        public = root.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
        assert [r.serial_number for r in response.responses] == [a.cert_id.serial_number for a in some]


def test_a_jwt_svid_signed_in_the_token_validates(token: Token) -> None:
    key = token.backend.load(token.backend.create("jwt", KeyType.EC_P256))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    public = key.public_key()
    claims = JwtSvidClaims(
        SpiffeId.parse("spiffe://example.org/web"), ("aud",), NOW, NOW + dt.timedelta(minutes=5)
    )
    token_text = sign_jwt_svid(key, key_id(public), claims)
    assert validate_jwt_svid(token_text, {key_id(public): public}, audience="aud", now=NOW) == claims


def test_rsa_signs_pkcs1_v15(token: Token) -> None:
    key = token.backend.load(token.backend.create("rsa", KeyType.RSA_2048))
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(signature, b"message", padding.PKCS1v15(), hashes.SHA256())


def test_private_keys_stay_in_the_token(token: Token) -> None:
    key_ref = token.backend.create("root", KeyType.EC_P256)
    listing = token_private_keys("certfleet-test")
    assert f"label:      {key_ref}" in listing
    assert "Access:     sensitive, always sensitive, never extractable, local" in listing
    assert "Usage:      sign\n" in listing  # not derive: the key only signs
    key = token.backend.load(key_ref)
    with pytest.raises(CaKeyError, match="cannot be exported"):
        key.private_bytes()  # type: ignore[call-arg]


def test_key_types_a_token_cannot_hold_are_refused(token: Token) -> None:
    with pytest.raises(CaKeyError, match="ec-p256, ec-p384 and rsa"):
        token.backend.create("root", KeyType.ED25519)


def test_a_removed_token_fails_closed_and_the_same_key_returns(token: Token) -> None:
    # Given a key in the token, used once
    key = token.backend.load(token.backend.create("root", KeyType.EC_P256))
    root = build_root("HSM Test", key, NOW)
    assert token.backend.up
    # When the token disappears
    token.remove()
    # Then signing fails with a 503-class error, the backend reports down, and a health probe
    # says so; nothing is signed by any other key
    with pytest.raises(KeyBackendUnavailable, match="certfleet-test") as failure:
        build_root("HSM Test", key, NOW)
    assert failure.value.http_status == 503
    assert not token.backend.up
    assert (token.backend.unavailable() or "").startswith("HSM token 'certfleet-test' is unavailable")
    # When it comes back, the next use reopens it and the same key signs again
    token.put_back()
    again = build_root("HSM Test", key, NOW)
    again.verify_directly_issued_by(again)
    assert again.public_key() == root.public_key()
    assert token.backend.up
    assert token.backend.unavailable() is None


def test_a_failed_token_is_not_retried_before_the_back_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = init_token(tmp_path, "certfleet-test")
    monkeypatch.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
    backend = Pkcs11KeyBackend(MODULE, "no-such-token", PIN, retry_seconds=3600)
    with pytest.raises(KeyBackendUnavailable, match="no-such-token"):
        backend.create("root", KeyType.EC_P256)
    # The second attempt within the back-off does not touch the module at all.
    backend_lib_calls = backend.last_error
    with pytest.raises(KeyBackendUnavailable):
        backend.create("root", KeyType.EC_P256)
    assert backend.last_error == backend_lib_calls
    assert not backend.up


def test_a_wrong_pin_is_unavailable_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = init_token(tmp_path, "certfleet-test")
    monkeypatch.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
    backend = Pkcs11KeyBackend(MODULE, "certfleet-test", "wrong-pin-1234", retry_seconds=0)
    with pytest.raises(KeyBackendUnavailable, match="PinIncorrect") as failure:
        backend.create("root", KeyType.EC_P256)
    assert "wrong-pin-1234" not in str(failure.value)
    assert "wrong-pin-1234" not in repr(backend.__dict__)


def test_the_pin_file_must_be_private(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o644)
    with pytest.raises(CaKeyError, match="readable by others"):
        read_pin(pin_file)
    pin_file.chmod(0o600)
    assert read_pin(pin_file) == PIN
