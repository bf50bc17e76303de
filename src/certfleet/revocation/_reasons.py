"""Revocation reasons: the RFC 5280 section 5.3.1 CRLReason values certfleet accepts."""

from __future__ import annotations

import enum

from cryptography import x509

from certfleet.revocation.errors import UnknownReason

__all__ = ["RevocationReason"]


class RevocationReason(enum.StrEnum):
    """The reasons a subscriber or operator may give.

    certificateHold (6) and removeFromCRL (8) are left out on purpose: certfleet never puts a
    certificate on hold (a revocation is final, as the CA/B Forum Baseline Requirements 7.2.2
    demand), and aACompromise (10) applies to attribute certificates only.
    """

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "caCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"

    @property
    def code(self) -> int:
        """The CRLReason ENUMERATED value (RFC 5280 section 5.3.1; also RFC 8555 section 7.6)."""
        return _CODES[self]

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags(_FLAG_NAMES[self])

    @classmethod
    def parse(cls, value: str | int) -> RevocationReason:
        """Accept the RFC name in any case (``keycompromise`` as certbot spells it) or the code."""
        if isinstance(value, int) and not isinstance(value, bool):
            for reason, code in _CODES.items():
                if code == value:
                    return reason
            raise UnknownReason(f"unsupported revocation reason code {value}: expected one of {_allowed()}")
        text = str(value).strip().replace("_", "").replace("-", "").lower()
        if text.isdigit():
            return cls.parse(int(text))
        for reason in cls:
            if reason.value.lower() == text:
                return reason
        raise UnknownReason(f"unknown revocation reason {value!r}: expected one of {_allowed()}")

    @classmethod
    def from_flag(cls, flag: x509.ReasonFlags) -> RevocationReason:
        for reason, name in _FLAG_NAMES.items():
            if name == flag.value:
                return reason
        raise UnknownReason(f"unsupported revocation reason {flag.value}")


_CODES: dict[RevocationReason, int] = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
}

# cryptography's ReasonFlags values are the lower-case names of RFC 5280.
_FLAG_NAMES: dict[RevocationReason, str] = {
    RevocationReason.UNSPECIFIED: "unspecified",
    RevocationReason.KEY_COMPROMISE: "keyCompromise",
    RevocationReason.CA_COMPROMISE: "cACompromise",
    RevocationReason.AFFILIATION_CHANGED: "affiliationChanged",
    RevocationReason.SUPERSEDED: "superseded",
    RevocationReason.CESSATION_OF_OPERATION: "cessationOfOperation",
    RevocationReason.PRIVILEGE_WITHDRAWN: "privilegeWithdrawn",
}


def _allowed() -> str:
    return ", ".join(r.value for r in RevocationReason)
