from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certfleet.audit import (
    AuditEntry,
    CertificateRef,
    ChainVerdict,
    Checkpoint,
    CheckpointVerdict,
    is_legacy_serial_subject,
    parse_public_key,
    sign_checkpoint,
    verify_chain,
    verify_checkpoints,
)
from certfleet.clock import Clock, SystemClock
from certfleet.errors import ConfigurationError, IntegrityError, InvalidInput
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["AuditCheck", "AuditService"]


def _serial(text: str) -> str:
    serial = text.strip().lower().replace(":", "").removeprefix("0x")
    if not serial or len(serial) > 40 or any(c not in "0123456789abcdef" for c in serial):
        raise InvalidInput(f"bad serial {text!r}: expected up to 40 hex digits")
    return serial.lstrip("0") or "0"


@dataclass(frozen=True)
class AuditCheck:
    """What ``audit verify`` reports, locally and over the API: the chain check and, when
    checkpoints were given, whether the log matches them (``checkpoint_line``, 1-based, when
    the checkpoint file itself is at fault)."""

    chain: ChainVerdict
    anchored: CheckpointVerdict | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.anchored is None or self.anchored.reason is None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.chain.entries,
            "first_bad_seq": self.chain.first_bad_seq,
            "reason": self.chain.reason,
            "checkpoints": self.anchored.checkpoints if self.anchored is not None else None,
            "checkpoint_reason": self.anchored.reason if self.anchored is not None else None,
            "checkpoint_line": self.anchored.line if self.anchored is not None else None,
        }


class AuditService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock | None = None,
        *,
        checkpoint_key: Callable[[], Ed25519PrivateKey] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock or SystemClock()
        self._checkpoint_key = checkpoint_key

    def issuer_name(self, issuer: str) -> str:
        """The issuer name audit subjects carry: a CA id (``ca list``) becomes that CA's
        subject name; anything else is taken as an RFC 4514 issuer name."""
        with self._uow(read_only=True) as uow:
            return self._issuer_name(uow, issuer)

    @staticmethod
    def _issuer_name(uow: UnitOfWork, issuer: str) -> str:
        ca = uow.cas.get(issuer.strip())
        return ca.certificate.subject.rfc4514_string() if ca is not None else issuer.strip()

    def entries(
        self,
        *,
        serial: str | None = None,
        issuer: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Every entry, oldest first; with ``serial`` and/or ``issuer`` only those about
        such certificates. Entries from before subjects named the issuer match ``serial``
        alone (they cannot say which issuer they meant), never an ``issuer`` filter.
        ``after_seq`` and ``limit`` read one page (the API's keyset pages)."""
        if limit is not None and limit < 1:
            raise InvalidInput("limit must be at least 1")
        matching = self._matching(serial, issuer, after_seq)
        for count, entry in enumerate(matching, start=1):
            yield entry
            if limit is not None and count >= limit:
                matching.close()
                return

    def _matching(
        self, serial: str | None, issuer: str | None, after_seq: int
    ) -> Generator[AuditEntry, None, None]:
        wanted_serial = _serial(serial) if serial else None
        with self._uow(read_only=True) as uow:
            wanted_issuer = self._issuer_name(uow, issuer) if issuer else None
            for entry in uow.audit.entries(after_seq=after_seq):
                if wanted_serial is None and wanted_issuer is None:
                    yield entry
                    continue
                ref = CertificateRef.parse(entry.subject)
                if ref is None:
                    legacy = wanted_issuer is None and entry.subject == wanted_serial
                    if legacy and is_legacy_serial_subject(entry.subject):
                        yield entry
                    continue
                if wanted_serial is not None and ref.serial != wanted_serial:
                    continue
                if wanted_issuer is not None and ref.issuer != wanted_issuer:
                    continue
                yield entry

    def check(
        self, checkpoint_lines: Sequence[str] | None = None, public_key: str | None = None
    ) -> AuditCheck:
        """``audit verify``: the chain, and with ``checkpoint_lines`` the signed checkpoints
        (signed by ``public_key``, base64 as ``audit checkpoint`` prints it; by default the
        data directory's checkpoint key)."""
        trusted = parse_public_key(public_key) if public_key is not None else None
        if checkpoint_lines is None:
            return AuditCheck(self.verify())
        anchored = self.verify_checkpoints(checkpoint_lines, trusted)
        return AuditCheck(anchored.chain, anchored)

    def verify(self) -> ChainVerdict:
        with self._uow(read_only=True) as uow:
            head = uow.audit.head()
            return verify_chain(uow.audit.entries(), head)

    # -- checkpoints: the head anchored outside the database ----------------------------------

    def checkpoint_key(self) -> Ed25519PrivateKey:
        if self._checkpoint_key is None:
            raise ConfigurationError("no checkpoint key is configured")
        return self._checkpoint_key()

    def checkpoint(self) -> Checkpoint:
        """Sign the current head, after checking the chain: a broken log is not anchored
        (that would vouch for the tampering)."""
        key = self.checkpoint_key()
        with self._uow(read_only=True) as uow:
            head = uow.audit.head()
            verdict = verify_chain(uow.audit.entries(), head)
        if not verdict.ok:
            raise IntegrityError(
                f"audit log FAILED verification at entry {verdict.first_bad_seq}: {verdict.reason}; "
                "no checkpoint written"
            )
        return sign_checkpoint(key, head, self._clock.now())

    def verify_checkpoints(
        self, lines: Iterable[str], public_key: Ed25519PublicKey | None = None
    ) -> CheckpointVerdict:
        """The chain check plus the checkpoints, signed by ``public_key`` (by default the
        data directory's checkpoint key)."""
        trusted = public_key or self.checkpoint_key().public_key()
        with self._uow(read_only=True) as uow:
            head = uow.audit.head()
            return verify_checkpoints(uow.audit.entries(), head, lines, trusted)
