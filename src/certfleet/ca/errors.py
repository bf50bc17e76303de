from __future__ import annotations

from certfleet.errors import ConfigurationError, InvalidInput

__all__ = ["CaKeyError", "UnknownProfile", "ValidityTooLong"]


class UnknownProfile(InvalidInput):
    pass


class ValidityTooLong(InvalidInput):
    pass


class CaKeyError(ConfigurationError):
    """A CA key cannot be stored or loaded (missing file, wrong passphrase)."""
