"""serverkeygen's answer (RFC 7030 section 4.4.2): multipart/mixed, the key as PKCS#8 and the
certificate as PKCS#7 certs-only, both base64; a CSR asking for CMS encryption is refused."""

from __future__ import annotations

import base64
import email
import email.policy

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.protocols.est import server_keygen_response
from tests.protocols.est.test_messages import self_signed


def test_the_parts_parse_back_to_the_key_and_the_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed("dev.example.test")
    answer = server_keygen_response(key, certificate)
    assert answer.content_type.startswith("multipart/mixed; boundary=")
    message = email.message_from_bytes(
        f"Content-Type: {answer.content_type}\r\n\r\n".encode() + answer.body, policy=email.policy.HTTP
    )
    parts = list(message.iter_parts())  # type: ignore[attr-defined]
    assert [p.get_content_type() for p in parts] == ["application/pkcs8", "application/pkcs7-mime"]
    assert parts[1]["Content-Type"].params["smime-type"] == "certs-only"
    loaded_key = serialization.load_der_private_key(base64.b64decode(parts[0].get_payload()), None)
    assert loaded_key.public_key() == key.public_key()
    assert pkcs7.load_der_pkcs7_certificates(base64.b64decode(parts[1].get_payload())) == [certificate]


def test_an_encrypted_key_replaces_the_pkcs8_part() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    answer = server_keygen_response(key, self_signed("dev.example.test"), b"\x30\x00")
    assert b"Content-Type: application/pkcs7-mime; smime-type=server-generated-key" in answer.body
    assert b"application/pkcs8" not in answer.body
