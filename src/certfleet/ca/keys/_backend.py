from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.x509 import KeyType


class KeyBackend(Protocol):
    """The interface the CA needs from a key store.

    ``key_ref`` is an opaque string the backend understands (a file name, a PKCS#11 label);
    it is what the database records, never the key itself.
    """

    name: str

    def create(self, label: str, key_type: KeyType) -> str:
        """Generate and store a new key; return its reference."""
        ...

    def load(self, key_ref: str) -> CertificateIssuerPrivateKeyTypes:
        """Return a handle able to sign with the referenced key."""
        ...

    def unavailable(self) -> str | None:
        """Why the keys cannot sign now (an HSM token gone), or None when they can: what
        ``/healthz`` and the ``certfleet_key_backend_up`` gauge report."""
        ...
