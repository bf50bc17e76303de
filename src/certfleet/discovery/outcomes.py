"""What a scan observed: one outcome per endpoint or file, a failure being a result too.

sslyze's lesson: a fleet-wide run returns data for every target, and a bad target never
aborts the run. Each outcome has a ``status`` and, unless it succeeded, a ``reason`` a person
can act on ("connection refused", "timed out after 3.0 s", "not a regular file (FIFO)").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from certfleet.discovery.targets import Endpoint

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "EndpointOutcome",
    "FileOutcome",
    "FileStatus",
    "FoundKey",
    "HstsCheck",
    "NetStatus",
    "RedirectCheck",
    "TlsObservation",
]


class NetStatus(enum.StrEnum):
    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    DNS_ERROR = "dns-error"
    TLS_ERROR = "tls-error"
    ERROR = "error"


class FileStatus(enum.StrEnum):
    OK = "ok"  # certificates and/or keys were read
    LOCKED = "locked"  # a PKCS#12 or keystore none of the passwords opened
    MALFORMED = "malformed"  # looks like a certificate format but does not parse
    SKIPPED = "skipped"  # not a regular file, over the size cap, a symlink not followed, a loop
    UNREADABLE = "unreadable"  # permission denied or another I/O error


@dataclass(frozen=True)
class HstsCheck:
    """The ``Strict-Transport-Security`` header of an HTTPS response (RFC 6797 section 6.1).

    ``answered`` is False when the service did not answer HTTP at all (not a web server):
    then nothing is concluded about HSTS.
    """

    answered: bool
    header: str | None = None
    max_age: int | None = None

    @property
    def enabled(self) -> bool:
        # max-age=0 tells the browser to forget the host (RFC 6797 section 6.1.1): not HSTS.
        return self.max_age is not None and self.max_age > 0


@dataclass(frozen=True)
class RedirectCheck:
    """What plain HTTP on ``port`` answered: ``reachable`` False when nothing listens (then
    there is nothing to strip); ``status`` and ``location`` of the response otherwise."""

    port: int
    reachable: bool
    status: int | None = None
    location: str | None = None
    reason: str | None = None

    @property
    def redirects_to_https(self) -> bool:
        return (
            self.status in (301, 302, 303, 307, 308)
            and self.location is not None
            and self.location.lower().startswith("https://")
        )


@dataclass(frozen=True)
class TlsObservation:
    """A completed handshake: the chain exactly as presented (leaf first), the negotiated
    protocol and cipher, the SNI sent and the address connected to."""

    peer_address: str
    tls_version: str
    cipher: str
    sni: str | None
    chain: tuple[x509.Certificate, ...]
    hsts: HstsCheck | None = None
    redirect: RedirectCheck | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


@dataclass(frozen=True)
class EndpointOutcome:
    endpoint: Endpoint
    status: NetStatus
    reason: str | None = None
    observation: TlsObservation | None = None
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is NetStatus.OK

    @property
    def location(self) -> str:
        return self.endpoint.address


@dataclass(frozen=True)
class FoundKey:
    """A private key in a file. ``spki_sha256`` identifies its public key when it could be
    read (always for unencrypted keys; for encrypted ones when a password opened it)."""

    spki_sha256: str | None
    encrypted: bool
    kind: str  # "pem", "der", "pkcs12", "jks"


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: FileStatus
    reason: str | None = None
    format: str | None = None
    certificates: tuple[x509.Certificate, ...] = ()
    keys: tuple[FoundKey, ...] = ()
    mode: int | None = None  # st_mode & 0o777, for the permission finding
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status is FileStatus.OK

    @property
    def location(self) -> str:
        return self.path
