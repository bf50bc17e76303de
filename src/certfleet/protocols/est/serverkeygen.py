"""The ``serverkeygen`` answer (RFC 7030 section 4.4.2): a multipart/mixed body with the key
the server generated, as PKCS#8, and its certificate, as PKCS#7 certs-only.

The key travels only inside the TLS connection that authenticated the client, the form RFC
7030 section 4.4.2 prescribes when "additional encryption is not being employed"
(``application/pkcs8``). The CMS additional encryption (a DecryptKeyIdentifier or
AsymmetricDecryptKeyIdentifier attribute in the CSR) is not offered: a CSR asking for it is
refused rather than answered with a key in a form its sender did not ask for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.protocols.est.errors import MalformedEstMessage
from certfleet.protocols.est.messages import CERTS_ONLY, base64_body, certs_only

__all__ = ["ServerKeygenResponse", "refuse_additional_encryption", "server_keygen_response"]

# RFC 7030 section 4.4.1.1 and 4.4.1.2 (id-aa-decryptKeyID, id-aa-asymmDecryptKeyID).
_ENCRYPTION_REQUESTS = {
    "1.2.840.113549.1.9.16.2.37": "DecryptKeyIdentifier",
    "1.2.840.113549.1.9.16.2.54": "AsymmetricDecryptKeyIdentifier",
}


def refuse_additional_encryption(csr: x509.CertificateSigningRequest) -> None:
    for attribute in csr.attributes:
        name = _ENCRYPTION_REQUESTS.get(attribute.oid.dotted_string)
        if name is not None:
            raise MalformedEstMessage(
                f"the CSR asks for the key to be encrypted with a {name} (RFC 7030 section 4.4.1): "
                "this server returns it as application/pkcs8 inside the TLS connection only"
            )


@dataclass(frozen=True)
class ServerKeygenResponse:
    content_type: str
    body: bytes


def server_keygen_response(
    private_key: CertificateIssuerPrivateKeyTypes, certificate: x509.Certificate
) -> ServerKeygenResponse:
    key_der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    boundary = f"est-{secrets.token_hex(12)}"
    parts = (
        ("application/pkcs8", base64_body(key_der)),
        (CERTS_ONLY, certs_only([certificate])),
    )
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
        + content
        + b"\r\n"
        for kind, content in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return ServerKeygenResponse(f'multipart/mixed; boundary="{boundary}"', body)
