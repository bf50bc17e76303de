from __future__ import annotations

from certfleet.errors import CertfleetError, ConfigurationError, InvalidInput

__all__ = ["CaKeyError", "KeyBackendUnavailable", "UnknownProfile", "ValidityTooLong"]


class UnknownProfile(InvalidInput):
    pass


class ValidityTooLong(InvalidInput):
    pass


class CaKeyError(ConfigurationError):
    """A CA key cannot be stored or loaded (missing file, wrong passphrase)."""


class KeyBackendUnavailable(CertfleetError, http_status=503, title="Key backend unavailable"):
    """The CA keys cannot be used now (an HSM token removed, its module failing, its login
    refused): nothing is signed and nothing falls back to another key; retry later."""
