"""The SCEP RA's key and certificate (RFC 8894 section 2.1): an RSA key (clients encrypt
requests to it) kept encrypted under the CA passphrase like every other key, 0600, and a
certificate from certfleet's issuing CA with digitalSignature and keyEncipherment (profile
``scep-ra``), replaced in the last third of its life or when the issuing CA changed."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certfleet.ca import SCEP_RA_PROFILE, IssuanceRequest
from certfleet.clock import Clock
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.services.issuance import IssuanceService
from certfleet.x509 import load_certificates, to_pem

__all__ = ["RaMaterial", "RegistrationAuthority"]

# The CA core takes only host names as common names (copied into the SAN); .invalid (RFC
# 6761) names nothing that could ever resolve.
RA_COMMON_NAME = "scep-ra.certfleet.invalid"
_RSA_BITS = 2048  # SCEP clients (certmonger, scepclient, iOS) all speak RSA key transport


@dataclass(frozen=True)
class RaMaterial:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]  # the issuing chain, root included


class RegistrationAuthority:
    """Loads the RA, issuing it on first use; every ``serve`` worker and the CLI share the
    files, and an exclusive lock on ``scep-ra.lock`` lets only one of them issue."""

    def __init__(
        self,
        issuance: IssuanceService,
        directory: Path,
        password: Callable[[], bytes],
        issuer: Callable[[], x509.Certificate],
        chain: Callable[[], tuple[x509.Certificate, ...]],
        clock: Clock,
    ) -> None:
        self._issuance = issuance
        self._cert_file = directory / "scep-ra.crt"
        self._key_file = directory / "scep-ra.key"
        self._lock_file = directory / "scep-ra.lock"
        self._password = password
        self._issuer = issuer  # the issuing CA's certificate (cached by the authorities)
        self._chain = chain  # the issuing CA first, the root last (a database read)
        self._clock = clock
        self._cached: RaMaterial | None = None
        self._lock = threading.Lock()

    def current(self) -> RaMaterial:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached
        with self._lock:
            self._cached = self._load_or_issue()
            return self._cached

    def loaded(self) -> RaMaterial | None:
        """The RA this process holds if it is still the one to use, else None: never reads a
        file or issues (the event loop may call it)."""
        cached = self._cached
        return cached if cached is not None and self._fresh(cached) else None

    def _fresh(self, material: RaMaterial) -> bool:
        cert = material.certificate
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        if cert.not_valid_after_utc - self._clock.now() <= lifetime / 3:
            return False
        # The issuing CA rotated: the RA moves to the new one (clients fetch GetCACert again).
        return self._issuer() == material.chain[0]

    def _read(self) -> RaMaterial | None:
        try:
            certs = load_certificates(self._cert_file.read_bytes())
            key = serialization.load_pem_private_key(self._key_file.read_bytes(), self._password())
        except (OSError, ValueError, TypeError, CertfleetError):
            return None
        if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != certs[0].public_key():
            return None
        material = RaMaterial(certs[0], key, tuple(certs[1:]))
        try:
            material.certificate.verify_directly_issued_by(material.chain[0])
        except (IndexError, ValueError, TypeError, InvalidSignature):
            return None
        return material if self._fresh(material) else None

    def _load_or_issue(self) -> RaMaterial:
        with open(self._lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            material = self._read()
            if material is not None:
                return material
            key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
            request = IssuanceRequest(SCEP_RA_PROFILE.name, key.public_key(), (), RA_COMMON_NAME)
            result = self._issuance.issue_registration_authority(request, actor="system:scep")
            chain = self._chain()
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(self._password()),
            )
            write_atomic(self._key_file, key_pem, mode=0o600)
            write_atomic(self._cert_file, to_pem([result.issued.certificate, *chain]).encode())
            return RaMaterial(result.issued.certificate, key, chain)
