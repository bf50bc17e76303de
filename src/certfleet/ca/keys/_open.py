from __future__ import annotations

from pathlib import Path

from certfleet.ca.keys._backend import KeyBackend
from certfleet.ca.keys.software import SoftwareKeyBackend
from certfleet.config._keys import KeySettings

__all__ = ["open_key_backend"]


def open_key_backend(settings: KeySettings, keys_dir: Path, passphrase: bytes) -> KeyBackend:
    """The backend ``[keys]`` names. The PKCS#11 module is loaded on first use, so opening
    a platform whose token is away still works (and reports the backend down)."""
    if settings.backend == "pkcs11":
        from certfleet.ca.keys.pkcs11 import Pkcs11KeyBackend, read_pin

        assert settings.pkcs11_module and settings.token_label and settings.pin_file  # checked by KeySettings
        return Pkcs11KeyBackend(
            Path(settings.pkcs11_module),
            settings.token_label,
            read_pin(Path(settings.pin_file)),
            retry_seconds=settings.retry_seconds,
        )
    return SoftwareKeyBackend(keys_dir, passphrase)
