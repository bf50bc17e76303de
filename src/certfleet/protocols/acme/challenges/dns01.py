"""dns-01 (RFC 8555 section 8.4): a TXT record at ``_acme-challenge.<name>``."""

from __future__ import annotations

import hashlib

from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.jws import b64encode
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.resolver import Question, Resolver

__all__ = ["Dns01Validator", "dns01_txt_value"]


def dns01_txt_value(key_authorization: str) -> str:
    return b64encode(hashlib.sha256(key_authorization.encode()).digest())


class Dns01Validator:
    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    @staticmethod
    def _name(identifier: Identifier) -> str:
        return f"_acme-challenge.{identifier.value}"

    def questions(self, identifier: Identifier) -> list[Question]:
        return [(self._name(identifier), "TXT")] if identifier.type == "dns" else []

    def validate(self, identifier: Identifier, token: str, key_authorization: str) -> None:
        if identifier.type != "dns":
            raise AcmeProblem("malformed", "dns-01 validates DNS names only (RFC 8738 section 7)")
        name = self._name(identifier)
        expected = dns01_txt_value(key_authorization)
        values = self._resolver.txt(name)
        if expected in values:
            return
        if not values:
            raise AcmeProblem("incorrectResponse", f"no TXT record found at {name}")
        raise AcmeProblem(
            "incorrectResponse", f"TXT records at {name} ({len(values)}) do not hold the expected digest"
        )
