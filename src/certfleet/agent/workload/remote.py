"""The SVID source over the certfleet server's agent-facing endpoints (agent mTLS).

The agent's identity certificate is renewed by the runner in another thread; this source
keeps its own connection and reconnects when the identity file changes, so it always
presents the current identity.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.agent.client import ServerClient
from certfleet.agent.errors import AgentError
from certfleet.agent.workload.source import (
    EntrySet,
    IssuedJwt,
    IssuedX509,
    RegistrationEntry,
    SvidRequest,
    TrustBundle,
)
from certfleet.x509 import load_certificates

__all__ = ["BATCH", "ServerSvidSource"]

BATCH = 500  # the server takes up to 500 CSRs per call (the cache sends no more)


def _time(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise AgentError(f"the server sent a time that is not a string: {text!r}")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def _ders(pem: str, source: str) -> tuple[bytes, ...]:
    if not pem.strip():
        return ()
    return tuple(c.public_bytes(Encoding.DER) for c in load_certificates(pem.encode(), source=source))


class ServerSvidSource:
    def __init__(self, server: str, ca_file: Path, identity_file: Path) -> None:
        self._client = ServerClient(server, ca_file, identity_file)
        self._identity_file = identity_file
        self._identity_mtime = self._mtime()
        self._lock = threading.Lock()  # around the identity check; calls may overlap

    def _mtime(self) -> int:
        try:
            return self._identity_file.stat().st_mtime_ns
        except OSError:
            return 0

    def _fresh(self) -> ServerClient:
        with self._lock:
            mtime = self._mtime()
            if mtime != self._identity_mtime:
                self._identity_mtime = mtime
                self._client.reload_identity()
        return self._client

    def entries(self) -> EntrySet:
        body = self._fresh().spiffe_entries()
        return EntrySet(
            trust_domain=str(body["trust_domain"]),
            agent_id=str(body["agent_id"]),
            revision=int(body["revision"]),
            entries=tuple(
                RegistrationEntry(
                    id=str(e["id"]),
                    spiffe_id=str(e["spiffe_id"]),
                    selectors=frozenset(str(s) for s in e["selectors"]),
                    ttl_seconds=int(e["ttl_seconds"]),
                    dns_names=tuple(str(n) for n in e.get("dns_names") or ()),
                )
                for e in body["entries"]
            ),
        )

    def issue_x509(self, requests: Sequence[SvidRequest]) -> list[IssuedX509]:
        issued: list[IssuedX509] = []
        for start in range(0, len(requests), BATCH):
            batch = [{"entry_id": r.entry_id, "csr": r.csr_pem} for r in requests[start : start + BATCH]]
            body = self._fresh().spiffe_x509_svids(batch)
            issued.extend(self._x509(svid) for svid in body["svids"])
        return issued

    @staticmethod
    def _x509(svid: dict[str, Any]) -> IssuedX509:
        leaf = x509.load_pem_x509_certificate(str(svid["certificate"]).encode())
        chain = _ders(str(svid.get("chain") or ""), "the SVID's chain")
        return IssuedX509(
            entry_id=str(svid["entry_id"]),
            spiffe_id=str(svid["spiffe_id"]),
            chain_der=(leaf.public_bytes(Encoding.DER), *chain),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    def issue_jwt(self, entry_id: str, audience: Sequence[str]) -> IssuedJwt:
        body = self._fresh().spiffe_jwt_svid(entry_id, list(audience))
        return IssuedJwt(str(body["spiffe_id"]), str(body["token"]), _time(body["expires_at"]))

    def bundle(self) -> TrustBundle:
        body = self._fresh().spiffe_bundle()
        return TrustBundle(
            trust_domain=str(body["trust_domain"]),
            x509_authorities_der=tuple(
                der for pem in body["x509_authorities"] for der in _ders(str(pem), "the trust bundle")
            ),
            jwt_keys=dict(body.get("jwt_authorities") or {"keys": []}),
            refresh_hint_seconds=int(body.get("refresh_hint_seconds") or 300),
        )

    def close(self) -> None:
        self._client.close()
