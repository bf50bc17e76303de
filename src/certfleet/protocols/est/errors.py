"""EST's errors. Each is a 4xx the edge returns as a one-line ``text/plain`` body, which RFC
7030 section 4.2.3 allows for an error response ("a human-readable error message")::

    CertfleetError
      InvalidInput (400)
        MalformedEstMessage     body not base64, not a PKCS#10 CSR whose signature verifies,
                                or asking for a key encryption this server cannot give
        ChannelBindingMismatch  challengePassword is not this TLS connection's tls-unique
        (415, in the edge)      Content-Type is not application/pkcs10
      Unauthenticated (401)     no or wrong Basic credentials, no client certificate
      Forbidden (403)           the credential or certificate may not ask for this, or the
                                policy engine refuses it (PolicyViolation)
      NotFound (404)            a CA label that names no profile
"""

from __future__ import annotations

from certfleet.errors import InvalidInput

__all__ = ["ChannelBindingMismatch", "MalformedEstMessage"]


class MalformedEstMessage(InvalidInput):
    """The request body is not what RFC 7030 section 4.2.1 requires."""


class ChannelBindingMismatch(InvalidInput):
    """RFC 7030 section 3.5: the CSR's challengePassword does not carry this connection's
    tls-unique value, or the connection has none to compare with."""
