"""The TLS client certificate of a request, for mTLS-authenticated agents.

uvicorn does not put the peer certificate in the ASGI scope (it implements no ASGI TLS
extension), and its request scope is built deep inside the protocol. What it does give every
connection is ``connection_made(transport)``, after the TLS handshake completed, and the
connection's ``self.app``. :class:`PeerCertificateProtocol` reads the verified peer
certificate there once per connection (``transport.get_extra_info("ssl_object")``) and wraps
that connection's app so each request scope carries it in the standard place, the ASGI TLS
extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM). A proxy header or a
client address never stands in for it: the certificate is bound to the TCP connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.api._coalescing import CoalescingProtocol
from certfleet.ca import CaCertificate
from certfleet.fs import write_atomic
from certfleet.x509 import to_pem

__all__ = [
    "PeerCertificateProtocol",
    "client_certificate_der",
    "with_client_certificate",
    "write_client_ca_file",
]

ASGIApp = Any  # (scope, receive, send) -> awaitable; uvicorn types it loosely too


# The ASGI TLS extension's tls_version values (the TLS protocol version numbers).
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def with_client_certificate(
    app: ASGIApp,
    certificate_der: bytes | None,
    *,
    tls_version: int | None = None,
    tls_unique: bytes | None = None,
) -> ASGIApp:
    """``app`` with ``certificate_der`` in every HTTP request's scope (TLS extension), and
    the connection's TLS version and, below TLS 1.3, its tls-unique channel binding (RFC
    5929; EST binds CSRs to it, RFC 7030 section 3.5) under ``tls_unique``."""
    pem = (
        x509.load_der_x509_certificate(certificate_der).public_bytes(serialization.Encoding.PEM).decode()
        if certificate_der
        else None
    )

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {
                "server_cert": None,
                "client_cert_chain": [pem] if pem else [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": tls_version,
                "cipher_suite": None,
                "tls_unique": tls_unique,
            }
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


def client_certificate_der(scope: Mapping[str, Any]) -> bytes | None:
    """The verified client certificate of this request, DER, or None if none was sent."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    return x509.load_pem_x509_certificate(chain[0].encode()).public_bytes(serialization.Encoding.DER)


class PeerCertificateProtocol(CoalescingProtocol):
    """uvicorn's httptools protocol (the compiled parser ``serve`` runs on, its writes joined
    per loop step as on the plain-HTTP listener), exposing the client certificate the TLS
    layer verified against certfleet's CA."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        tls_version = _TLS_VERSIONS.get(ssl_object.version() or "")
        # tls-unique is undefined for TLS 1.3 (RFC 8446 section C.5): none is offered there.
        tls_unique = ssl_object.get_channel_binding("tls-unique") if tls_version == 0x0303 else None
        self.app = with_client_certificate(self.app, der, tls_version=tls_version, tls_unique=tls_unique)


def write_client_ca_file(cas: Sequence[CaCertificate], directory: Path) -> Path:
    """The trust anchors the HTTPS listener verifies client certificates against: every CA
    of certfleet's hierarchy (root and intermediates, so an agent may send its leaf alone).
    Read when the listener starts: a CA added later is trusted after a restart."""
    path = directory / "client-ca.pem"
    write_atomic(path, to_pem([ca.certificate for ca in cas]).encode())
    return path
