"""RFC 8555 problem documents (section 6.7), which are also the exceptions the server raises.

One table maps each kind to its URN and HTTP status. A few kinds are certfleet's own names
for a standard URN with a different status (a missing resource is ``malformed`` with 404,
as Boulder and Pebble answer), so the status never has to be chosen at the raise site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certfleet.errors import CertfleetError

__all__ = ["PROBLEM_CONTENT_TYPE", "AcmeProblem", "problem_kinds"]

PROBLEM_CONTENT_TYPE = "application/problem+json"
_URN = "urn:ietf:params:acme:error:"


@dataclass(frozen=True)
class _Kind:
    urn: str
    status: int


_KINDS: dict[str, _Kind] = {
    # RFC 8555 section 6.7, table of error types
    "accountDoesNotExist": _Kind(_URN + "accountDoesNotExist", 400),
    "alreadyRevoked": _Kind(_URN + "alreadyRevoked", 400),
    "badCSR": _Kind(_URN + "badCSR", 400),
    "badNonce": _Kind(_URN + "badNonce", 400),
    "badPublicKey": _Kind(_URN + "badPublicKey", 400),
    "badRevocationReason": _Kind(_URN + "badRevocationReason", 400),
    "badSignatureAlgorithm": _Kind(_URN + "badSignatureAlgorithm", 400),
    "caa": _Kind(_URN + "caa", 403),
    "compound": _Kind(_URN + "compound", 400),
    "connection": _Kind(_URN + "connection", 400),
    "dns": _Kind(_URN + "dns", 400),
    "externalAccountRequired": _Kind(_URN + "externalAccountRequired", 403),
    "incorrectResponse": _Kind(_URN + "incorrectResponse", 403),
    "invalidContact": _Kind(_URN + "invalidContact", 400),
    "malformed": _Kind(_URN + "malformed", 400),
    "orderNotReady": _Kind(_URN + "orderNotReady", 403),
    "rateLimited": _Kind(_URN + "rateLimited", 429),
    "rejectedIdentifier": _Kind(_URN + "rejectedIdentifier", 400),
    "serverInternal": _Kind(_URN + "serverInternal", 500),
    "tls": _Kind(_URN + "tls", 400),
    "unauthorized": _Kind(_URN + "unauthorized", 403),
    "unsupportedContact": _Kind(_URN + "unsupportedContact", 400),
    "unsupportedIdentifier": _Kind(_URN + "unsupportedIdentifier", 400),
    "userActionRequired": _Kind(_URN + "userActionRequired", 403),
    # RFC 9773 section 5 (ARI) and draft-ietf-acme-profiles
    "alreadyReplaced": _Kind(_URN + "alreadyReplaced", 409),
    "invalidProfile": _Kind(_URN + "invalidProfile", 400),
    # certfleet's names for a standard type with another status
    "notFound": _Kind(_URN + "malformed", 404),
    "methodNotAllowed": _Kind(_URN + "malformed", 405),
    "conflict": _Kind(_URN + "malformed", 409),
    # RFC 8555 has no type for "try again later": serverInternal with 503 (the CA's keys
    # are unavailable, an HSM token removed); the order stays ready for a retried finalize.
    "serverUnavailable": _Kind(_URN + "serverInternal", 503),
    "payloadTooLarge": _Kind(_URN + "malformed", 413),
    "unsupportedMediaType": _Kind(_URN + "malformed", 415),
}


def problem_kinds() -> tuple[str, ...]:
    return tuple(_KINDS)


class AcmeProblem(CertfleetError):
    """An ACME error: ``kind`` selects URN and status; ``subproblems`` carry one problem per
    identifier (RFC 8555 section 6.7.1); ``extra`` adds fields such as ``algorithms``."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        subproblems: Sequence[AcmeProblem] = (),
        identifier: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown ACME problem kind {kind!r}")
        super().__init__(detail)
        self.kind = kind
        self.subproblems = tuple(subproblems)
        self.identifier = dict(identifier) if identifier else None
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return _KINDS[self.kind].urn

    @property
    def http_status(self) -> int:  # type: ignore[override]
        return _KINDS[self.kind].status

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.type.rsplit(":", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "detail": self.detail, "status": self.http_status}
        if self.identifier:
            body["identifier"] = self.identifier
        if self.subproblems:
            body["subproblems"] = [s.to_json() for s in self.subproblems]
        body.update(self.extra)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AcmeProblem:
        """Rebuild a stored problem (a challenge's ``error``)."""
        urn = str(body.get("type", _URN + "serverInternal"))
        status = body.get("status")
        kind = next(
            (k for k, v in _KINDS.items() if v.urn == urn and v.status == status),
            next((k for k, v in _KINDS.items() if v.urn == urn), "serverInternal"),
        )
        subs = [cls.from_json(s) for s in body.get("subproblems", []) if isinstance(s, Mapping)]
        ident = body.get("identifier")
        return cls(kind, str(body.get("detail", "")), subproblems=subs, identifier=ident)

    def __repr__(self) -> str:
        return f"AcmeProblem({self.kind!r}, {self.detail!r})"
