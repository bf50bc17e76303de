"""Where CA private keys live. Every backend implements :class:`KeyBackend`; the software
backend keeps encrypted PKCS#8 files, the PKCS#11 backend (``certfleet.ca.keys.pkcs11``,
imported only when configured) keeps them in an HSM token. Whatever the backend, signing goes
through ``certfleet.x509.signing``."""

from __future__ import annotations

from certfleet.ca.keys._backend import KeyBackend
from certfleet.ca.keys._open import open_key_backend
from certfleet.ca.keys.software import SoftwareKeyBackend, load_or_create_passphrase

__all__ = ["KeyBackend", "SoftwareKeyBackend", "load_or_create_passphrase", "open_key_backend"]
