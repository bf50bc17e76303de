"""The HTTPS listener's own certificate, issued by certfleet's dedicated server-identity CA
(see ``certfleet.ca._server_identity``): agents accept the server only through that CA, so a
certificate anyone obtains for the server's names through the normal issuance paths cannot
impersonate it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from certfleet.ca import IssuanceRequest
from certfleet.clock import Clock
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.services.issuance import IssuanceService
from certfleet.x509 import KeyType, generate_private_key, load_certificates, parse_names, to_pem

__all__ = ["DEFAULT_NAMES", "ServerIdentity", "ensure_server_identity"]

# What a local client types: the loopback addresses and "localhost".
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerIdentity:
    certificate_file: Path  # leaf followed by the issuing chain
    key_file: Path  # encrypted PKCS#8
    key_password: bytes
    reissued: bool


def _current_is_good(
    cert_file: Path, key_file: Path, password: bytes, names: set[str], issuer: x509.Certificate, clock: Clock
) -> bool:
    """Keep the current certificate only if it still fits: same names, its key (which a crash
    between the two writes could leave mismatched), signed by the current server-identity CA
    (one from the issuing CA, as before that CA existed, is replaced), and not in the last
    third of its life."""
    try:
        cert = load_certificates(cert_file.read_bytes())[0]
        key = serialization.load_pem_private_key(key_file.read_bytes(), password)
        cert.verify_directly_issued_by(issuer)
    except (OSError, ValueError, TypeError, CertfleetError, IndexError, InvalidSignature):
        return False
    if key.public_key() != cert.public_key():
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    have = set(san.get_values_for_type(x509.DNSName)) | {
        ip.compressed for ip in san.get_values_for_type(x509.IPAddress)
    }
    now = clock.now()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    remaining = cert.not_valid_after_utc - now
    # Reissue in the last third of the lifetime, the same rule as automatic renewal.
    return have == names and cert.not_valid_before_utc <= now and remaining > lifetime / 3


def ensure_server_identity(
    issuance: IssuanceService, directory: Path, extra_names: tuple[str, ...], password: bytes, clock: Clock
) -> ServerIdentity:
    """Return the listener's certificate, issuing a new one when missing, when the names
    changed, when it does not match its key, when the server-identity CA changed (or the
    certificate predates it), or when it is in the last third of its lifetime."""
    names = tuple(n.value for n in parse_names((*DEFAULT_NAMES, *extra_names)))
    cert_file = directory / "server.crt"
    key_file = directory / "server.key"
    issuer = issuance.server_identity_issuer()
    if _current_is_good(cert_file, key_file, password, set(names), issuer, clock):
        return ServerIdentity(cert_file, key_file, password, reissued=False)
    key = generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest("tls-server", key.public_key(), names, "localhost")
    result = issuance.issue_server_identity(request, actor="system:serve")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    write_atomic(key_file, key_pem, mode=0o600)
    write_atomic(cert_file, to_pem(result.issued.fullchain).encode())
    return ServerIdentity(cert_file, key_file, password, reissued=True)
