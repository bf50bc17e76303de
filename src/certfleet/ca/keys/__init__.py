"""Where CA private keys live. Every backend implements :class:`KeyBackend`; the software
backend keeps encrypted PKCS#8 files, and an HSM (PKCS#11) backend can follow."""

from __future__ import annotations

from certfleet.ca.keys._backend import KeyBackend
from certfleet.ca.keys.software import SoftwareKeyBackend, load_or_create_passphrase

__all__ = ["KeyBackend", "SoftwareKeyBackend", "load_or_create_passphrase"]
