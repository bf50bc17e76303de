"""The ``serverkeygen`` answer (RFC 7030 section 4.4.2): a multipart/mixed body with the key
the server generated and its certificate (PKCS#7 certs-only).

Without a request for additional encryption the key travels as ``application/pkcs8`` inside
the TLS connection that authenticated the client, as RFC 7030 section 4.4.2 prescribes; with
an AsymmetricDecryptKeyIdentifier it is an ``application/pkcs7-mime;
smime-type=server-generated-key`` part (:mod:`.key_package`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.protocols.est.key_package import SERVER_GENERATED_KEY
from certfleet.protocols.est.messages import CERTS_ONLY, base64_body, certs_only

__all__ = ["ServerKeygenResponse", "server_keygen_response"]


@dataclass(frozen=True)
class ServerKeygenResponse:
    content_type: str
    body: bytes


def server_keygen_response(
    private_key: CertificateIssuerPrivateKeyTypes,
    certificate: x509.Certificate,
    encrypted_key: bytes | None = None,
) -> ServerKeygenResponse:
    """``encrypted_key``: the key as :func:`.key_package.encrypted_key_package` made it, sent
    instead of the plain PKCS#8 when the client asked for additional encryption."""
    if encrypted_key is not None:
        key_part = (SERVER_GENERATED_KEY, base64_body(encrypted_key))
    else:
        key_der = private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_part = ("application/pkcs8", base64_body(key_der))
    boundary = f"est-{secrets.token_hex(12)}"
    parts = (key_part, (CERTS_ONLY, certs_only([certificate])))
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
        + content
        + b"\r\n"
        for kind, content in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return ServerKeygenResponse(f'multipart/mixed; boundary="{boundary}"', body)
