"""Errors of the SPIFFE domain: each one a malformed value, refused with a precise detail."""

from __future__ import annotations

from certfleet.errors import InvalidInput

__all__ = ["InvalidEntry", "InvalidJwtSvid", "InvalidSelector", "InvalidSpiffeId"]


class InvalidSpiffeId(InvalidInput):
    """A string that is not a SPIFFE ID (SPIFFE-ID spec, section 2)."""


class InvalidSelector(InvalidInput):
    """A selector that is not ``type:key:value`` or whose value its type refuses."""


class InvalidEntry(InvalidInput):
    """A registration entry that cannot be registered as given."""


class InvalidJwtSvid(InvalidInput):
    """A JWT-SVID that fails validation (signature, key, audience, expiry, subject)."""
