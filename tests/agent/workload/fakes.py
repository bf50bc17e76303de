"""A hand-written SVID source: the certfleet server as the agent's SVID cache sees it,
issuing from a throwaway CA and signing JWT-SVIDs with an ES256 key, on an injected clock."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.agent.errors import ServerUnreachable
from certfleet.agent.workload import (
    EntrySet,
    IssuedJwt,
    IssuedX509,
    RegistrationEntry,
    SvidRequest,
    TrustBundle,
)
from tests.agent.material import ThrowawayCa
from tests.conftest import FakeClock


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeSvidSource:
    """``down`` makes every call fail as an unreachable server does; ``issued`` counts the
    X509-SVIDs issued per entry."""

    def __init__(self, clock: FakeClock, trust_domain: str = "example.org") -> None:
        self.clock = clock
        self.trust_domain = trust_domain
        self.ca = ThrowawayCa()
        self.jwt_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "jwt-key-1"
        self._entries: dict[str, RegistrationEntry] = {}
        self.revision = 1
        self.down = False
        self.calls_before_down: int | None = None  # the server goes down after this many calls
        self.issued: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, entry_id: str, path: str, *selectors: str, ttl_seconds: int = 3600) -> RegistrationEntry:
        entry = RegistrationEntry(
            entry_id, f"spiffe://{self.trust_domain}/{path}", frozenset(selectors), ttl_seconds
        )
        with self._lock:
            self._entries[entry_id] = entry
            self.revision += 1
        return entry

    def _check(self) -> None:
        if self.down:
            raise ServerUnreachable("cannot reach the certfleet server (fake): connection refused")

    def entries(self) -> EntrySet:
        self._check()
        with self._lock:
            return EntrySet(
                self.trust_domain,
                f"spiffe://{self.trust_domain}/agent/host",
                self.revision,
                tuple(self._entries.values()),
            )

    def issue_x509(self, requests: Sequence[SvidRequest]) -> list[IssuedX509]:
        self._check()
        if self.calls_before_down is not None:
            self.calls_before_down -= 1
            self.down = self.calls_before_down <= 0
        return [self._sign(request) for request in requests]

    def _sign(self, request: SvidRequest) -> IssuedX509:
        entry = self._entries[request.entry_id]
        csr = x509.load_pem_x509_csr(request.csr_pem.encode())
        start = self.clock.now() - dt.timedelta(seconds=1)
        end = start + dt.timedelta(seconds=entry.ttl_seconds)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(entry.spiffe_id)]), True
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
            .sign(self.ca.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        with self._lock:
            self.issued[entry.id] = self.issued.get(entry.id, 0) + 1
        return IssuedX509(entry.id, entry.spiffe_id, (cert.public_bytes(Encoding.DER),), start, end)

    def issue_jwt(self, entry_id: str, audience: Sequence[str]) -> IssuedJwt:
        self._check()
        entry = self._entries[entry_id]
        expires = self.clock.now() + dt.timedelta(minutes=5)
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        claims = {"sub": entry.spiffe_id, "aud": list(audience), "exp": int(expires.timestamp())}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.jwt_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        return IssuedJwt(entry.spiffe_id, token, expires)

    def bundle(self) -> TrustBundle:
        self._check()
        numbers = self.jwt_key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "use": "jwt-svid",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        return TrustBundle(
            self.trust_domain, (self.ca.certificate.public_bytes(Encoding.DER),), {"keys": [jwk]}
        )
