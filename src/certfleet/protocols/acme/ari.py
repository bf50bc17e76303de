"""ACME Renewal Information (RFC 9773): certificate identifiers and suggested windows.

A certificate is named by ``base64url(AKI keyIdentifier) "." base64url(serial)`` where the
serial is the DER INTEGER's content octets (RFC 9773 section 4.1). The default window is the
start of the last third of the lifetime plus a sixth of it: a client renewing at the very
end of the window still has a sixth of the lifetime to recover from failures. An operator
override moves the window to end "now" so ARI-aware clients renew at their next check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509

from certfleet.clock import iso
from certfleet.lifecycle.planning import RenewalWindow
from certfleet.protocols.acme.jws import b64decode, b64encode
from certfleet.protocols.acme.problems import AcmeProblem

__all__ = [
    "OVERRIDE_SPAN",
    "CertId",
    "RenewalOverride",
    "RenewalRepository",
    "RenewalWindow",
    "cert_id_of",
    "default_window",
    "window_json",
]

# An override window ends at the moment the operator acted: every later check finds it in
# the past, and a client then renews at once (RFC 9773 section 4.2), whatever random point of
# the window it would have picked.
OVERRIDE_SPAN = dt.timedelta(hours=1)


def _serial_octets(serial: int) -> bytes:
    """The content octets of a DER INTEGER: minimal two's complement (a leading zero octet
    when the high bit is set, so a positive serial never reads as negative)."""
    length = serial.bit_length() // 8 + 1
    return serial.to_bytes(length, "big")


@dataclass(frozen=True)
class CertId:
    key_identifier: bytes
    serial_number: int

    @classmethod
    def parse(cls, text: str) -> CertId:
        aki_b64, sep, serial_b64 = text.partition(".")
        if not sep or not aki_b64 or not serial_b64 or "." in serial_b64 or "=" in text:
            raise AcmeProblem(
                "malformed", "renewalInfo certificate id must be base64url(AKI).base64url(serial)"
            )
        aki = b64decode(aki_b64, "certificate id key identifier")
        serial_bytes = b64decode(serial_b64, "certificate id serial")
        if not serial_bytes or serial_bytes[0] & 0x80:
            raise AcmeProblem("malformed", "certificate id serial must be a positive DER integer")
        if len(serial_bytes) > 1 and serial_bytes[0] == 0 and not serial_bytes[1] & 0x80:
            raise AcmeProblem("malformed", "certificate id serial is not minimally encoded")
        return cls(aki, int.from_bytes(serial_bytes, "big"))

    def __str__(self) -> str:
        return f"{b64encode(self.key_identifier)}.{b64encode(_serial_octets(self.serial_number))}"


def cert_id_of(cert: x509.Certificate) -> CertId:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise AcmeProblem("malformed", "certificate has no authority key identifier") from exc
    if aki.key_identifier is None:
        raise AcmeProblem("malformed", "certificate's authority key identifier has no keyIdentifier")
    return CertId(aki.key_identifier, cert.serial_number)


def window_json(window: RenewalWindow, explanation_url: str | None = None) -> dict[str, Any]:
    """The renewalInfo body (RFC 9773 section 4.2)."""
    body: dict[str, Any] = {"suggestedWindow": {"start": iso(window.start), "end": iso(window.end)}}
    if explanation_url:
        body["explanationURL"] = explanation_url
    return body


def default_window(not_before: dt.datetime, not_after: dt.datetime) -> RenewalWindow:
    lifetime = not_after - not_before
    start = not_after - lifetime / 3
    return RenewalWindow(start, start + lifetime / 6)


@dataclass(frozen=True)
class RenewalOverride:
    """An operator's "renew now" for one certificate (by inventory serial)."""

    serial: str
    start: dt.datetime
    end: dt.datetime
    set_at: dt.datetime
    actor: str

    def window(self) -> RenewalWindow:
        return RenewalWindow(self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "window_start": iso(self.start),
            "window_end": iso(self.end),
            "set_at": iso(self.set_at),
            "actor": self.actor,
        }


class RenewalRepository(Protocol):
    def set_override(self, override: RenewalOverride) -> None:
        """Insert or replace the override of ``override.serial``."""
        ...

    def get_override(self, serial: str) -> RenewalOverride | None: ...

    def overrides(self) -> Sequence[RenewalOverride]:
        """Every override, newest first."""
        ...

    def clear_override(self, serial: str) -> bool:
        """Remove the override of ``serial`` (its window is the default again); False when
        there was none."""
        ...
