"""The agent's state directory (0700): its enrolment, identity, pending keys and retry times.

::

    STATE/agent.json                  server URL, host name, team
    STATE/ca.pem                      the pinned root, then the CAs it signed
    STATE/server-ca.pem               the server-identity CAs: the only TLS anchors for the
                                      server (see trust.py)
    STATE/identity.pem        0600    the identity certificate, its chain and its key
    STATE/trust-anchors.pem           certfleet's active roots, learned over mTLS only and
                                      written to the system store (see trust_anchors.py)
    STATE/certs/NAME/pending.key 0600 a key generated for a renewal not yet deployed
    STATE/certs/NAME/pending.pem      the certificate issued for it (kept across a failure,
                                      so a retry deploys it instead of issuing again)
    STATE/certs/NAME/retry.json       failures so far and when to try again
    STATE/locks/NAME.lock             see locks.py
    STATE/outbox/*.json               reports the server could not take yet
    STATE/acme/<directory-hash>/account.key 0600
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from certfleet.agent.errors import NotEnrolled
from certfleet.agent.locks import CertificateLock
from certfleet.agent.trust import TrustBundle, TrustFiles
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.x509 import load_certificates, to_pem

__all__ = ["DEFAULT_STATE_DIR", "AgentState", "Enrolment", "RetryState"]

DEFAULT_STATE_DIR = Path("/var/lib/certfleet-agent")
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Enrolment:
    server: str
    host: str
    team: str | None


@dataclass(frozen=True)
class RetryState:
    """Consecutive failures of one certificate, and the earliest next attempt: 1, 2, 4 ...
    minutes, at most an hour, so a broken service is retried but never hammered."""

    failures: int = 0
    next_attempt_at: dt.datetime | None = None
    last_error: str | None = None

    def after_failure(self, now: dt.datetime, error: str) -> RetryState:
        failures = self.failures + 1
        delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
        return RetryState(failures, now + delay, error)


def _private_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class AgentState:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)

    # -- enrolment and identity -----------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def identity_file(self) -> Path:
        return self.root / "identity.pem"

    def save_enrolment(self, enrolment: Enrolment) -> None:
        body = {"server": enrolment.server, "host": enrolment.host, "team": enrolment.team}
        write_atomic(self.root / "agent.json", json.dumps(body, indent=2).encode(), mode=0o600)

    def enrolment(self) -> Enrolment:
        try:
            body = json.loads((self.root / "agent.json").read_bytes())
        except FileNotFoundError:
            raise NotEnrolled(
                f"this host is not enrolled (no {self.root}/agent.json): run 'certfleet agent enroll' first"
            ) from None
        except (OSError, ValueError) as exc:
            raise NotEnrolled(f"{self.root}/agent.json is unreadable: {exc}") from exc
        if not self.identity_file.exists() or not self.ca_file.exists():
            raise NotEnrolled(f"{self.root} has no identity: run 'certfleet agent enroll' again")
        return Enrolment(str(body["server"]), str(body["host"]), body.get("team"))

    def save_ca(self, certificates: list[x509.Certificate]) -> None:
        write_atomic(self.ca_file, to_pem(certificates).encode(), mode=0o644)

    def save_trust(self, bundle: TrustBundle) -> None:
        """The bundle that verified against the pinned root (see trust.py)."""
        TrustFiles(self.ca_file).save(bundle)

    def ca_certificates(self) -> list[x509.Certificate]:
        try:
            return load_certificates(self.ca_file.read_bytes())
        except (OSError, CertfleetError):
            return []

    def save_identity(self, key: PrivateKeyTypes, chain: list[x509.Certificate]) -> None:
        """One file, written atomically: the key and its certificate can never disagree."""
        write_atomic(self.identity_file, to_pem(chain).encode() + _private_pem(key), mode=0o600)

    def identity_certificate(self) -> x509.Certificate:
        try:
            return load_certificates(self.identity_file.read_bytes())[0]
        except (OSError, CertfleetError) as exc:
            raise NotEnrolled(f"cannot read the agent identity {self.identity_file}: {exc}") from exc

    # -- per certificate ------------------------------------------------------------------

    def _cert_dir(self, name: str) -> Path:
        return self.root / "certs" / name

    def lock(self, name: str) -> CertificateLock:
        return CertificateLock(self.root / "locks" / f"{name}.lock", name)

    def pending_key(self, name: str) -> PrivateKeyTypes | None:
        try:
            return serialization.load_pem_private_key(
                (self._cert_dir(name) / "pending.key").read_bytes(), None
            )
        except (OSError, ValueError, TypeError):
            return None

    def save_pending_key(self, name: str, key: PrivateKeyTypes) -> None:
        self._cert_dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self._cert_dir(name) / "pending.key", _private_pem(key), mode=0o600)
        (self._cert_dir(name) / "pending.pem").unlink(missing_ok=True)

    def pending_chain(self, name: str) -> list[x509.Certificate]:
        try:
            return load_certificates((self._cert_dir(name) / "pending.pem").read_bytes())
        except (OSError, CertfleetError):
            return []

    def save_pending_chain(self, name: str, chain: list[x509.Certificate]) -> None:
        write_atomic(self._cert_dir(name) / "pending.pem", to_pem(chain).encode(), mode=0o644)

    def clear_pending(self, name: str) -> None:
        for file in ("pending.pem", "pending.key"):
            (self._cert_dir(name) / file).unlink(missing_ok=True)

    def retry(self, name: str) -> RetryState:
        try:
            body = json.loads((self._cert_dir(name) / "retry.json").read_bytes())
            at = body.get("next_attempt_at")
            return RetryState(
                int(body["failures"]), dt.datetime.fromisoformat(at) if at else None, body.get("last_error")
            )
        except (OSError, ValueError, KeyError):
            return RetryState()

    def save_retry(self, name: str, retry: RetryState) -> None:
        path = self._cert_dir(name) / "retry.json"
        if retry.failures == 0:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {
            "failures": retry.failures,
            "next_attempt_at": retry.next_attempt_at.isoformat() if retry.next_attempt_at else None,
            "last_error": retry.last_error,
        }
        write_atomic(path, json.dumps(body).encode(), mode=0o600)

    # -- reports the server could not take yet --------------------------------------------

    def queue_report(self, body: dict[str, Any]) -> None:
        outbox = self.root / "outbox"
        outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}.json"
        write_atomic(outbox / name, json.dumps(body).encode(), mode=0o600)

    def queued_reports(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        outbox = self.root / "outbox"
        if not outbox.is_dir():
            return
        for path in sorted(outbox.glob("*.json")):
            try:
                yield path, json.loads(path.read_bytes())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)

    # -- external ACME accounts -----------------------------------------------------------

    def acme_account_dir(self, directory_url: str) -> Path:
        digest = hashlib.sha256(directory_url.encode()).hexdigest()[:16]
        path = self.root / "acme" / digest
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
