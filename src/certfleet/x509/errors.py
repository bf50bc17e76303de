from __future__ import annotations

from certfleet.errors import InvalidInput

__all__ = ["BadKey", "BadName", "MalformedInput"]


class MalformedInput(InvalidInput):
    """Bytes that do not parse as the PEM or DER structure expected."""


class BadName(InvalidInput):
    """A DNS name or IP address unfit for a certificate."""


class BadKey(InvalidInput):
    """A public key of an unsupported or too weak type or size."""
