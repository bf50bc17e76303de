"""Errors of the revocation core (all under the one certfleet hierarchy)."""

from __future__ import annotations

from certfleet.errors import Conflict, InvalidInput, PolicyViolation

__all__ = ["AlreadyRevoked", "KeyBlocked", "MalformedOcspRequest", "UnknownReason"]


class AlreadyRevoked(Conflict):
    """The certificate (or serial) is already revoked; nothing was changed."""

    def __init__(self, detail: str, serial: str | None = None) -> None:
        super().__init__(detail)
        self.serial = serial


class UnknownReason(InvalidInput):
    """A revocation reason that is not one of the RFC 5280 CRLReason names we accept."""


class KeyBlocked(PolicyViolation):
    """The public key was revoked for keyCompromise and may never be certified again."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, rule="blocked-key")


class MalformedOcspRequest(InvalidInput):
    """Bytes that are not an acceptable OCSP request; answered ``malformedRequest``."""
