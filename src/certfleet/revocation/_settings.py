"""The ``[revocation]`` section of config.toml. Its value type is defined in
``certfleet.config`` (which sits below revocation in the layers and parses every section
once); the revocation package re-exports it under its own name."""

from __future__ import annotations

from certfleet.config import MAX_CRL_VALIDITY, RevocationSettings

__all__ = ["MAX_CRL_VALIDITY", "RevocationSettings"]
