"""Finding codes, the severity scale, and the one severity each code has (the table in
``certfleet.discovery.findings``)."""

from __future__ import annotations

import enum

from certfleet.errors import InvalidInput

__all__ = ["SEVERITY", "FindingCode", "Severity"]


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidInput(f"unknown severity {value!r}: expected one of {allowed}") from None


class FindingCode(enum.StrEnum):
    EXPIRED = "expired"
    EXPIRING = "expiring"
    SELF_SIGNED = "self-signed"
    UNTRUSTED_ISSUER = "untrusted-issuer"
    INCOMPLETE_CHAIN = "incomplete-chain"
    HOSTNAME_MISMATCH = "hostname-mismatch"
    WEAK_KEY = "weak-key"
    WEAK_SIGNATURE = "weak-signature"
    LONG_VALIDITY = "long-validity"
    LEGACY_TLS = "legacy-tls"
    NO_HSTS = "no-hsts"
    NO_HTTPS_REDIRECT = "no-https-redirect"
    UNENCRYPTED_PRIVATE_KEY = "unencrypted-private-key"
    PRIVATE_KEY_PERMISSIONS = "private-key-permissions"
    KEY_REUSE = "key-reuse"

    @classmethod
    def parse(cls, value: str) -> FindingCode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise InvalidInput(f"unknown finding code {value!r}: expected one of {', '.join(cls)}") from None


SEVERITY: dict[FindingCode, Severity] = {
    FindingCode.EXPIRED: Severity.CRITICAL,
    FindingCode.EXPIRING: Severity.MEDIUM,
    FindingCode.SELF_SIGNED: Severity.MEDIUM,
    FindingCode.UNTRUSTED_ISSUER: Severity.HIGH,
    FindingCode.INCOMPLETE_CHAIN: Severity.MEDIUM,
    FindingCode.HOSTNAME_MISMATCH: Severity.HIGH,
    FindingCode.WEAK_KEY: Severity.HIGH,
    FindingCode.WEAK_SIGNATURE: Severity.HIGH,
    FindingCode.LONG_VALIDITY: Severity.LOW,
    FindingCode.LEGACY_TLS: Severity.MEDIUM,
    FindingCode.NO_HSTS: Severity.LOW,
    FindingCode.NO_HTTPS_REDIRECT: Severity.MEDIUM,
    FindingCode.UNENCRYPTED_PRIVATE_KEY: Severity.MEDIUM,
    FindingCode.PRIVATE_KEY_PERMISSIONS: Severity.HIGH,
    FindingCode.KEY_REUSE: Severity.MEDIUM,
}
