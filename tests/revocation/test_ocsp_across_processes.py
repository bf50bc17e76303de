"""OCSP answers kept in a worker's memory, on SQLite and PostgreSQL: a revocation committed by
any other process or platform is seen by the very next request (no sleep, no wait), and
nothing is read or signed again while nothing changed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import text

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.store import Database
from certfleet.store._revocation_generation import GenerationReader
from certfleet.store._revocation_store import SqlRevocationStore
from certfleet.x509 import KeyType, generate_private_key, serial_hex
from tests.conftest import FakeClock, make_platform

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def _issued(platform: Platform, name: str) -> tuple[x509.Certificate, bytes]:
    """A certificate and its nonce-less SHA-1 OCSP request (the RFC 5019 profile)."""
    key = generate_private_key(KeyType.EC_P256)
    result = platform.issuance.issue(IssuanceRequest("tls-server", key.public_key(), (name,)), actor="test")
    cert, issuer = result.issued.certificate, result.issued.chain[0]
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return cert, request.public_bytes(Encoding.DER)


def _status(platform: Platform, request: bytes) -> ocsp.OCSPCertStatus:
    return ocsp.load_der_ocsp_response(platform.revocation.ocsp(request).der).certificate_status


@pytest.fixture
def other(data_dir: Path, db_url: str, clock: FakeClock, platform: Platform) -> Iterator[Platform]:
    """A second platform on the same data directory and database: another worker or node."""
    second = make_platform(data_dir, db_url, clock)
    yield second
    second.close()


def test_a_revocation_by_another_platform_is_seen_by_the_next_request(
    platform: Platform, other: Platform
) -> None:
    cert, request = _issued(platform, "across.example.test")
    assert _status(platform, request) is ocsp.OCSPCertStatus.GOOD
    assert platform.revocation.ocsp_remembered(request) is not None  # kept in memory
    other.revocation.revoke(serial_hex(cert.serial_number), "keyCompromise", actor="other")
    # No sleep, no notification to wait for: the very next request.
    assert platform.revocation.ocsp_remembered(request) is None
    assert _status(platform, request) is ocsp.OCSPCertStatus.REVOKED


def test_a_revocation_by_another_process_is_seen_by_the_next_request(
    platform: Platform, data_dir: Path, db_url: str
) -> None:
    cert, request = _issued(platform, "process.example.test")
    assert _status(platform, request) is ocsp.OCSPCertStatus.GOOD
    revoked = subprocess.run(
        [
            *(CERTFLEET, "revoke", serial_hex(cert.serial_number), "--reason", "keyCompromise"),
            *("--data-dir", str(data_dir), "--db", db_url),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert _status(platform, request) is ocsp.OCSPCertStatus.REVOKED


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Record each call of one of the SQL store's reads (the real method still runs)."""
    calls: list[str] = []
    real: Callable[..., Any] = getattr(SqlRevocationStore, name)

    def spy(self: SqlRevocationStore, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlRevocationStore, name, spy)
    return calls


def test_while_nothing_changes_answers_come_from_memory(
    platform: Platform, other: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, request = _issued(platform, "memory.example.test")
    first = platform.revocation.ocsp(request).der
    spies = [_spy(monkeypatch, name) for name in ("cached_response", "serial_status", "save_responses")]
    for _ in range(5):
        assert platform.revocation.ocsp(request).der == first
    # Another platform's issuance commits, but revokes nothing: memory stays valid.
    _issued(other, "unrelated.example.test")
    assert platform.revocation.ocsp(request).der == first
    assert spies == [[], [], []]  # no pre-signed response read, no status read, nothing signed


def test_the_generation_moves_only_with_a_committed_revocation(db_url: str, platform: Platform) -> None:
    cert, _ = _issued(platform, "generation.example.test")
    database = Database(db_url)
    reader = GenerationReader(database.engine)
    try:
        before = reader.current()
        assert reader.current() == before
        with pytest.raises(RuntimeError), database.session() as session:
            session.execute(text("UPDATE revocation_generation SET value = value + 1 WHERE id = 1"))
            raise RuntimeError("rolled back")
        assert reader.current() == before
        platform.revocation.revoke(serial_hex(cert.serial_number), "superseded", actor="test")
        assert reader.current() == before + 1
    finally:
        reader.close()
        database.dispose()


def test_a_responder_certificate_revoked_elsewhere_signs_nothing_more(
    platform: Platform, other: Platform
) -> None:
    _, request = _issued(platform, "responder.example.test")
    first = ocsp.load_der_ocsp_response(platform.revocation.ocsp(request).der)
    (responder,) = first.certificates
    other.revocation.revoke_serial(serial_hex(responder.serial_number), "keyCompromise", actor="other")
    # Neither this worker's memory, its cached signer nor the pre-signed responses in the
    # database may serve a signature clients now refuse.
    again = ocsp.load_der_ocsp_response(platform.revocation.ocsp(request).der)
    assert again.certificate_status is ocsp.OCSPCertStatus.GOOD
    (replacement,) = again.certificates
    assert replacement.serial_number != responder.serial_number
    assert _status(other, request) is ocsp.OCSPCertStatus.GOOD
