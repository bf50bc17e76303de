"""Challenge validators, one module each. A validator takes the identifier, the token and the
key authorization, and returns normally on success or raises the :class:`AcmeProblem` that
becomes the challenge's ``error`` (``connection``, ``dns``, ``tls``, ``incorrectResponse``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from certfleet.protocols.acme.challenges.dns01 import Dns01Validator, dns01_txt_value
from certfleet.protocols.acme.challenges.http01 import Http01Validator
from certfleet.protocols.acme.challenges.tlsalpn01 import TlsAlpn01Validator
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.resolver import Question

__all__ = [
    "ChallengeValidator",
    "Dns01Validator",
    "Http01Validator",
    "TlsAlpn01Validator",
    "dns01_txt_value",
    "key_authorization",
]


class ChallengeValidator(Protocol):
    def validate(self, identifier: Identifier, token: str, key_authorization: str) -> None: ...

    def questions(self, identifier: Identifier) -> Sequence[Question]:
        """The DNS look-ups :meth:`validate` makes for ``identifier`` (asked together with
        the CAA look-ups of the same validation)."""
        ...


def key_authorization(token: str, account_thumbprint: str) -> str:
    """RFC 8555 section 8.1: ``token || '.' || base64url(Thumbprint(accountKey))``."""
    return f"{token}.{account_thumbprint}"
