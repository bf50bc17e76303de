"""A throwaway in-memory CA hierarchy and a hand-written fake of the revocation store, so the
revocation core is tested without a database."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.ca import CaCertificate, CaUrls, build_intermediate, build_root, ca_id_for, new_serial_number
from certfleet.revocation import (
    CachedResponse,
    CertStatus,
    CrlKind,
    CrlState,
    Revocation,
    RevokedEntry,
    SerialStatus,
    StoredCrl,
)
from tests.conftest import FakeClock

PKILINT_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Pki:
    """A root, an issuing intermediate and their keys."""

    root: CaCertificate
    root_key: CertificateIssuerPrivateKeyTypes
    issuing: CaCertificate
    issuing_key: CertificateIssuerPrivateKeyTypes

    def leaf(self, now: dt.datetime, *, days: int = 30, serial_number: int | None = None) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = self.issuing.certificate
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.test")]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(serial_number or new_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
            .sign(self.issuing_key, hashes.SHA256())
        )


def make_pki(now: dt.datetime, name: str = "Test") -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_cert = build_root(name, root_key, now)
    root_id = ca_id_for(root_cert)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing_cert = build_intermediate(
        name, issuing_key, root_cert, root_key, root_id, CaUrls("http://crl.example.test"), now
    )
    root = CaCertificate(root_id, f"{name} Root CA", "root", None, root_cert, "memory", "root", True)
    issuing = CaCertificate(
        ca_id_for(issuing_cert),
        f"{name} Issuing CA 1",
        "intermediate",
        root_id,
        issuing_cert,
        "memory",
        "i1",
        True,
    )
    return Pki(root, root_key, issuing, issuing_key)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def other_pki() -> Pki:
    """A second, unrelated hierarchy: an issuer the responder does not serve."""
    return make_pki(dt.datetime.now(dt.UTC).replace(microsecond=0), "Other")


@dataclass
class FakeStore:
    """The revocation store as plain dictionaries, with the contract the SQL store keeps:
    a cached ``good`` is never returned once the serial has a revocation."""

    serials: dict[str, SerialStatus] = field(default_factory=dict)
    responses: dict[tuple[str, str, str], CachedResponse] = field(default_factory=dict)
    crls: dict[tuple[str, CrlKind], StoredCrl] = field(default_factory=dict)
    states: dict[str, CrlState] = field(default_factory=dict)
    saves: int = 0
    writer_busy: bool = False  # another writer holds the database: a no-wait save is refused
    revocation_generation: int = 0
    reads: int = 0  # database reads a real store would make: cached responses and statuses

    def generation(self) -> int:
        return self.revocation_generation

    generation_is_local = True

    def close(self) -> None:
        pass

    def issue(self, ca_id: str, serial_number: int, at: dt.datetime, state: str = "issued") -> None:
        self.serials[format(serial_number, "x")] = SerialStatus(ca_id, state, at)

    def revoke(self, revocation: Revocation) -> None:
        status = self.serials[revocation.serial]
        self.serials[revocation.serial] = replace(status, revocation=revocation)
        self.revocation_generation += 1  # as the SQL store does in the revoking transaction

    def crl(self, ca_id: str, kind: CrlKind) -> tuple[StoredCrl | None, CrlState]:
        return self.crls.get((ca_id, kind)), self.states.get(ca_id, CrlState(ca_id))

    @contextmanager
    def crl_entries(
        self, ca_id: str, *, delta: bool, expires_after: dt.datetime
    ) -> Iterator[tuple[CrlState, Iterator[RevokedEntry]]]:
        state = self.states.get(ca_id, CrlState(ca_id))
        revocations = [
            s.revocation
            for s in self.serials.values()
            if s.revocation is not None
            and s.issuer_ca_id == ca_id
            and s.revocation.expires_at > expires_after
            and s.revocation.seq > (state.base_seq if delta else 0)
        ]
        yield state, iter([r.entry() for r in revocations])

    def cached_response(self, ca_id: str, serial: str, hash_algorithm: str) -> CachedResponse | None:
        self.reads += 1
        cached = self.responses.get((ca_id, serial, hash_algorithm))
        status = self.serials.get(serial)
        if cached is not None and cached.status is CertStatus.GOOD and status and status.revocation:
            return None
        return cached

    def serial_status(self, ca_id: str, serial: str) -> SerialStatus | None:
        self.reads += 1
        status = self.serials.get(serial)
        return status if status is not None and status.issuer_ca_id == ca_id else None

    def responses_due(self, ca_id: str, produced_before: dt.datetime, limit: int) -> list[tuple[str, str]]:
        due = [
            (k[1], k[2])
            for k, r in self.responses.items()
            if k[0] == ca_id and r.this_update < produced_before
        ]
        return due[:limit]

    def allocate_crl_number(self, ca_id: str) -> int:
        state = self.states.get(ca_id, CrlState(ca_id))
        self.states[ca_id] = replace(state, last_number=state.last_number + 1)
        return state.last_number + 1

    def save_crl(self, crl: StoredCrl, *, new_base: bool = False) -> bool:
        self.crls[(crl.ca_id, crl.kind)] = crl
        if new_base:
            state = self.states.get(crl.ca_id, CrlState(crl.ca_id))
            self.states[crl.ca_id] = replace(
                state, base_number=crl.number, base_seq=crl.covered_seq, base_at=crl.this_update
            )
        return True

    def save_responses(self, responses: list[CachedResponse], *, wait: bool = True) -> bool:
        if not wait and self.writer_busy:
            return False
        self.saves += len(responses)
        for response in responses:
            self.responses[(response.ca_id, response.serial, response.hash_algorithm)] = response
        return True


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def now(clock: FakeClock) -> dt.datetime:
    return clock.now()


def pkilint_errors(tool: str, path: Path, *args: str) -> list[str]:
    """Run a pkilint command-line linter; return its ERROR and FATAL findings (the exit code
    counts findings of every severity, so the severities are read instead)."""
    result = subprocess.run(
        [str(PKILINT_BIN / tool), "lint", *args, "-s", "ERROR", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    findings = [line for line in result.stdout.splitlines() if "(ERROR)" in line or "(FATAL)" in line]
    assert findings or result.returncode == 0, result.stdout + result.stderr
    return findings
