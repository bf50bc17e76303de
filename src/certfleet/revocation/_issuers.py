"""Which of our CAs an OCSP CertID names (RFC 6960 section 4.1.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certfleet.x509 import der as _der
from certfleet.x509 import spki_der

__all__ = ["HASH_ALGORITHMS", "CaT", "CertId", "IssuerIndex", "IssuingCa", "issuer_key_hash"]


class IssuingCa(Protocol):
    """What revocation needs to know of a CA (``certfleet.ca.CaT`` has it; the core
    packages stay independent of each other)."""

    @property
    def id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...

    @property
    def certificate(self) -> x509.Certificate: ...


CaT = TypeVar("CaT", bound=IssuingCa)

# The hash algorithms cryptography accepts in a CertID; RFC 5019 section 2.1.1 requires
# SHA-1, and current clients also send SHA-256.
HASH_ALGORITHMS: dict[str, hashes.HashAlgorithm] = {
    h.name: h
    for h in (hashes.SHA1(), hashes.SHA224(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512())  # noqa: S303 - identifiers, not security
}


@dataclass(frozen=True)
class CertId:
    """One certificate asked about: ``hash_algorithm`` is a name from :data:`HASH_ALGORITHMS`,
    or the dotted OID of an algorithm we cannot compute (such a CertID matches no issuer)."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int

    @property
    def algorithm(self) -> hashes.HashAlgorithm | None:
        return HASH_ALGORITHMS.get(self.hash_algorithm)


def issuer_key_hash(ca: IssuingCa, algorithm: str) -> bytes:
    """Hash of the value of the issuer's subjectPublicKey BIT STRING, without its tag,
    length and unused-bits octet (RFC 6960 section 4.1.1)."""
    spki = spki_der(ca.certificate.public_key())
    _algorithm, bit_string = _der.elements(_der.single(spki).content)
    return hashlib.new(algorithm, bit_string.content[1:]).digest()


def issuer_name_hash(ca: IssuingCa, algorithm: str) -> bytes:
    return hashlib.new(algorithm, ca.certificate.subject.public_bytes()).digest()


class IssuerIndex(Generic[CaT]):
    """Our CAs keyed by (algorithm, name hash, key hash), plus the CA certificates each CA
    issued (a root answers for its intermediates, whose serials are not in the serials table)."""

    def __init__(self, cas: Iterable[CaT]) -> None:
        self._by_id: dict[str, CaT] = {}
        self._by_hash: dict[tuple[str, bytes, bytes], CaT] = {}
        self._children: dict[str, dict[int, CaT]] = {}
        for ca in cas:
            self._by_id[ca.id] = ca
            for name in HASH_ALGORITHMS:
                key = (name, issuer_name_hash(ca, name), issuer_key_hash(ca, name))
                self._by_hash[key] = ca
        for ca in self._by_id.values():
            if ca.parent_id and ca.parent_id != ca.id:
                self._children.setdefault(ca.parent_id, {})[ca.certificate.serial_number] = ca

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, ca_id: str) -> CaT | None:
        return self._by_id.get(ca_id)

    def match(self, cert_id: CertId) -> CaT | None:
        return self._by_hash.get((cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash))

    def child(self, ca_id: str, serial_number: int) -> CaT | None:
        """The CA certificate ``ca_id`` issued with this serial, if any."""
        return self._children.get(ca_id, {}).get(serial_number)

    def cas(self) -> list[CaT]:
        return list(self._by_id.values())

    def cert_id(self, ca: CaT, serial_number: int, algorithm: str = "sha1") -> CertId:
        """The CertID a client would send for ``serial_number`` (SHA-1 by default, the
        algorithm RFC 5019 section 2.1.1 requires of clients)."""
        return CertId(
            algorithm, issuer_name_hash(ca, algorithm), issuer_key_hash(ca, algorithm), serial_number
        )
