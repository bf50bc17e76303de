"""How an audit entry names the certificate it is about.

A serial number is unique only per issuer (RFC 5280 4.1.2.2: "the issuer name and serial
number identify a unique certificate"), so an entry about a certificate names both, as the
subject ``cert:<serial>@<issuer>``:

* ``<serial>`` is lowercase hexadecimal without leading zeros, as the inventory shows it;
* ``<issuer>`` is the certificate's issuer name as an RFC 4514 string, exactly as the
  inventory's ``issuer`` field and ``certificates show`` print it (the same function of the
  DER issuer field), so a SIEM user can copy it from there and search for the whole subject.

The serial comes first because hex has no ``@`` while a name may: the subject splits at its
first ``@``. Entries written before this form existed name the serial alone; they are kept
as written (rewriting would break the chain) and are read as "legacy" subjects.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from cryptography import x509

__all__ = ["CertificateRef", "is_legacy_serial_subject"]

_PREFIX = "cert:"
_HEX = frozenset(string.hexdigits.lower())


@dataclass(frozen=True)
class CertificateRef:
    """A certificate as issuer and serial: the unique name RFC 5280 gives it."""

    serial: str
    issuer: str

    def __post_init__(self) -> None:
        serial = self.serial.lower().removeprefix("0x").replace(":", "").lstrip("0") or "0"
        if not set(serial) <= _HEX:
            raise ValueError(f"serial {self.serial!r} is not hexadecimal")
        if not self.issuer:
            raise ValueError("an audit subject about a certificate needs its issuer name")
        object.__setattr__(self, "serial", serial)

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateRef:
        return cls(format(certificate.serial_number, "x"), certificate.issuer.rfc4514_string())

    @classmethod
    def parse(cls, subject: str) -> CertificateRef | None:
        """The certificate an audit subject names, or None if it names something else."""
        if not subject.startswith(_PREFIX) or "@" not in subject:
            return None
        serial, issuer = subject.removeprefix(_PREFIX).split("@", 1)
        try:
            return cls(serial, issuer)
        except ValueError:
            return None

    @property
    def subject(self) -> str:
        return f"{_PREFIX}{self.serial}@{self.issuer}"

    def __str__(self) -> str:
        return self.subject


def is_legacy_serial_subject(subject: str) -> bool:
    """Whether ``subject`` is a bare serial, as entries about certificates were written
    before they named the issuer (such a subject does not say which issuer's serial)."""
    return bool(subject) and len(subject) <= 42 and set(subject) <= _HEX
