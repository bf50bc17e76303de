"""Errors of secret sealing.

::

    SecretsKeyError (ConfigurationError)   the secrets key file is missing, unreadable, exposed,
                                           malformed, or not the key the database was sealed with
    UnsealError (IntegrityError)           a sealed value does not authenticate: altered, or moved
                                           from another row
"""

from __future__ import annotations

from certfleet.errors import ConfigurationError, IntegrityError

__all__ = ["SecretsKeyError", "UnsealError"]


class SecretsKeyError(ConfigurationError):
    """The platform cannot start with this secrets key (the message says why and what to do)."""


class UnsealError(IntegrityError):
    """A sealed value failed authentication; its detail names the row, never the value."""
