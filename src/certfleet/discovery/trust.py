"""Trust anchors and chain building: does a presented chain lead to something we trust, and
did the server leave out a certificate a client would need?

Anchors are the system trust store plus certfleet's own CAs plus any the user adds. A
*pool* of intermediates seen elsewhere (in this scan, or earlier ones) lets us name the
certificate a server failed to send instead of calling the leaf untrusted.

We verify signatures ourselves: ``Certificate.verify_directly_issued_by`` refuses SHA-1 and
MD5 signatures, and a scanner must still follow those chains to report them as weak.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from certfleet.discovery._lenient import lenient_parsing
from certfleet.x509 import spki_sha256

__all__ = [
    "MAX_PATH_LENGTH",
    "CertificatePool",
    "ChainAnalyzer",
    "ChainVerdict",
    "fingerprint",
    "is_self_signed",
    "issued_by",
    "load_pem_bundle",
    "load_system_anchors",
    "spki_sha256",
    "system_bundle_path",
]

MAX_PATH_LENGTH = 10
_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/cert.pem",  # Alpine, macOS
    "/usr/lib/ssl/cert.pem",
)


@lru_cache(maxsize=2048)
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, hex. Remembered for the last certificates asked about: judging a
    chain asks for the same few (the leaf, its issuers, the anchors) a dozen times, and a
    certificate hashes and compares by its DER, far cheaper than digesting it again."""
    return cert.fingerprint(hashes.SHA256()).hex()


@lru_cache(maxsize=2048)
def _spki_of(cert: x509.Certificate) -> str:
    """:func:`spki_sha256` of the certificate's key, remembered like :func:`fingerprint`."""
    return spki_sha256(cert.public_key())


# Legacy algorithms ``signature_algorithm_parameters`` no longer describes (it answers None
# or raises for them), mapped to the hash they sign with.
_LEGACY_HASHES: dict[x509.ObjectIdentifier, type[hashes.HashAlgorithm]] = {
    SignatureAlgorithmOID.RSA_WITH_SHA1: hashes.SHA1,
    SignatureAlgorithmOID._RSA_WITH_SHA1: hashes.SHA1,
    SignatureAlgorithmOID.RSA_WITH_MD5: hashes.MD5,
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: hashes.SHA1,
    SignatureAlgorithmOID.DSA_WITH_SHA1: hashes.SHA1,
}


def _hash_of(child: x509.Certificate) -> hashes.HashAlgorithm | None:
    legacy = _LEGACY_HASHES.get(child.signature_algorithm_oid)
    if legacy is not None:
        return legacy()
    try:
        return child.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None


def _verify_signature(child: x509.Certificate, parent: x509.Certificate) -> bool:
    key = parent.public_key()
    signature, tbs = child.signature, child.tbs_certificate_bytes
    digest = _hash_of(child)
    try:
        if isinstance(key, rsa.RSAPublicKey) and digest is not None:
            params = (
                child.signature_algorithm_parameters
                if child.signature_algorithm_oid not in _LEGACY_HASHES
                else None
            )
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            key.verify(signature, tbs, pad, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and digest is not None:
            key.verify(signature, tbs, ec.ECDSA(digest))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, tbs)
        elif isinstance(key, dsa.DSAPublicKey) and digest is not None:
            key.verify(signature, tbs, digest)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent``'s key signed ``child`` and the names chain (RFC 5280 section 6.1.3)."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return _verify_signature(child, parent)  # SHA-1, MD5 and friends
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and issued_by(cert, cert)


def load_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; a malformed block is skipped, not fatal."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        pass
    out: list[x509.Certificate] = []
    marker = b"-----END CERTIFICATE-----"
    for block in data.split(marker):
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            continue
        try:
            out.append(x509.load_pem_x509_certificate(block[start:] + marker))
        except ValueError:
            continue
    return out


def system_bundle_path() -> Path | None:
    """The system CA bundle: OpenSSL's configured file (honours ``SSL_CERT_FILE``), else the
    usual locations of the major distributions."""
    paths = ssl.get_default_verify_paths()
    env_file = os.environ.get(paths.openssl_cafile_env)
    for candidate in (env_file, paths.cafile, paths.openssl_cafile, *_BUNDLE_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def load_system_anchors() -> list[x509.Certificate]:
    path = system_bundle_path()
    if path is None:
        return []
    try:
        data = path.read_bytes()
    except OSError:
        return []
    with lenient_parsing():
        return load_pem_bundle(data)


class CertificatePool:
    """Certificates indexed by subject, each once (by fingerprint)."""

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        self._fingerprints: set[str] = set()
        for cert in certificates:
            self.add(cert)

    def add(self, cert: x509.Certificate) -> None:
        fp = fingerprint(cert)
        if fp in self._fingerprints:
            return
        self._fingerprints.add(fp)
        self._by_subject.setdefault(cert.subject, []).append(cert)

    def with_subject(self, name: x509.Name) -> Sequence[x509.Certificate]:
        return self._by_subject.get(name, ())

    def holds(self, cert: x509.Certificate) -> bool:
        """The same certificate, or one with the same subject and key (a re-issued root).
        Keys are compared only between certificates that share a subject: most asked about
        (leaves, intermediates against the system's anchors) share none, and hashing each
        anchor's key up front cost more than judging a fleet's chains."""
        if fingerprint(cert) in self._fingerprints:
            return True
        namesakes = self._by_subject.get(cert.subject)
        if not namesakes:
            return False
        key = _spki_of(cert)
        return any(_spki_of(other) == key for other in namesakes)

    def __len__(self) -> int:
        return len(self._fingerprints)


@dataclass(frozen=True)
class ChainVerdict:
    """``path`` runs from the leaf up as far as issuers could be found. ``trusted``: it
    reaches an anchor. ``missing``: certificates on the path that are neither self-signed nor
    sent by the server, i.e. intermediates a client without our pool would lack."""

    path: tuple[x509.Certificate, ...]
    trusted: bool
    self_signed_leaf: bool
    missing: tuple[x509.Certificate, ...] = field(default=())


class ChainAnalyzer:
    """Builds paths against fixed anchors and a pool of known intermediates; caches each
    signature check, since a fleet shares a handful of intermediates."""

    def __init__(self, anchors: CertificatePool, intermediates: CertificatePool | None = None) -> None:
        self.anchors = anchors
        self.intermediates = intermediates or CertificatePool()
        self._signed: dict[tuple[str, str], bool] = {}

    def _issued_by(self, child: x509.Certificate, parent: x509.Certificate) -> bool:
        key = (fingerprint(child), fingerprint(parent))
        if key not in self._signed:
            self._signed[key] = issued_by(child, parent)
        return self._signed[key]

    def analyse(self, presented: Sequence[x509.Certificate]) -> ChainVerdict:
        leaf = presented[0]
        sent = CertificatePool(presented)
        self_signed_leaf = self._issued_by(leaf, leaf) if leaf.issuer == leaf.subject else False
        path = [leaf]
        seen = {fingerprint(leaf)}
        current = leaf
        while len(path) < MAX_PATH_LENGTH:
            if self.anchors.holds(current) or (
                current.issuer == current.subject and self._issued_by(current, current)
            ):
                break
            parent = self._next_issuer(current, (sent, self.anchors, self.intermediates), seen)
            if parent is None:
                break
            path.append(parent)
            seen.add(fingerprint(parent))
            current = parent
        trusted = any(self.anchors.holds(c) for c in path)
        missing = tuple(
            c for c in path[1:] if not sent.holds(c) and not (c.issuer == c.subject and self._issued_by(c, c))
        )
        return ChainVerdict(tuple(path), trusted, self_signed_leaf, missing)

    def _next_issuer(
        self, cert: x509.Certificate, sources: Sequence[CertificatePool], seen: set[str]
    ) -> x509.Certificate | None:
        for source in sources:
            for candidate in source.with_subject(cert.issuer):
                if fingerprint(candidate) not in seen and self._issued_by(cert, candidate):
                    return candidate
        return None
