"""The ``[keys]`` section of ``config.toml``: where the CA keys live.

``backend = "software"`` (the default) keeps them as encrypted PKCS#8 files under the data
directory's ``keys/``; ``backend = "pkcs11"`` keeps them in an HSM token, which needs the
PKCS#11 module (a shared library), the token's label and a 0600 file holding the user PIN
(the PIN itself never appears in the configuration, the database or a log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from certfleet.errors import ConfigurationError

__all__ = ["KeySettings"]


@dataclass(frozen=True)
class KeySettings:
    """* ``backend``: ``"software"`` or ``"pkcs11"``.
    * ``pkcs11_module``, ``token_label``, ``pin_file``: required with ``pkcs11``.
    * ``retry_seconds`` (default 2): after the token fails, how long issuance answers 503
      before the next use tries to reopen it; 0 retries on every use."""

    backend: Literal["software", "pkcs11"] = "software"
    pkcs11_module: str | None = None
    token_label: str | None = None
    pin_file: str | None = None
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.backend == "pkcs11":
            missing = [k for k in ("pkcs11_module", "token_label", "pin_file") if not getattr(self, k)]
            if missing:
                raise ConfigurationError(f"keys: backend pkcs11 needs {', '.join(missing)}")
        if not 0 <= self.retry_seconds <= 300:
            raise ConfigurationError("keys.retry_seconds must be a number from 0 to 300")
