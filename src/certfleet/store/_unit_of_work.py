from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from certfleet.sealing import SecretBox
from certfleet.store._acme import SqlAcmeRepositories
from certfleet.store._agent import SqlAgentRepository
from certfleet.store._database import Database
from certfleet.store._discovery import SqlFindingRepository, SqlLocationRepository, SqlScanRunRepository
from certfleet.store._est import SqlEstCredentialRepository
from certfleet.store._issuance_ledger import SqlIssuanceLedger
from certfleet.store._job_leases import SqlJobLeases
from certfleet.store._lifecycle import SqlLifecycleRepositories
from certfleet.store._notify import SqlChannelRepository, SqlOutboxRepository
from certfleet.store._policy import SqlPolicyRepository
from certfleet.store._repositories import (
    SqlAuditRepository,
    SqlCaRepository,
    SqlCertificateRepository,
    SqlSerialRepository,
    SqlTokenRepository,
)
from certfleet.store._revocation import SqlBlockedKeyRepository, SqlRevocationRepository, SqlRevocationStore
from certfleet.store._siem import SqlSiemCursor
from certfleet.store._token_reader import SqlTokenReader
from certfleet.store._trust_anchors import SqlTrustAnchorRepository

__all__ = ["SqlUnitOfWork", "Store"]


class SqlUnitOfWork:
    """Every repository over one session, i.e. one transaction."""

    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self.session = session
        self.certificates = SqlCertificateRepository(session)
        self.serials = SqlSerialRepository(session)
        self.cas = SqlCaRepository(session)
        self.tokens = SqlTokenRepository(session)
        self.audit = SqlAuditRepository(session)
        self.revocations = SqlRevocationRepository(session)
        self.blocked_keys = SqlBlockedKeyRepository(session)
        self.acme = SqlAcmeRepositories(session, secrets)
        self.scans = SqlScanRunRepository(session)
        self.locations = SqlLocationRepository(session)
        self.findings = SqlFindingRepository(session)
        self.trust_anchors = SqlTrustAnchorRepository(session)
        self.policies = SqlPolicyRepository(session)
        self.outbox = SqlOutboxRepository(session, secrets)
        self.notify_channels = SqlChannelRepository(session, secrets)
        self.agents = SqlAgentRepository(session)
        self.lifecycle = SqlLifecycleRepositories(session)
        self.est_credentials = SqlEstCredentialRepository(session)


class Store:
    """``secrets`` seals EAB keys and channel secrets (:func:`open_secret_box`); without it
    the store refuses to write or read them rather than keep them in plaintext."""

    def __init__(self, database: Database, secrets: SecretBox | None = None) -> None:
        self.database = database
        self._secrets = secrets

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[SqlUnitOfWork]:
        """One transaction: committed when the block ends normally, rolled back otherwise.
        ``read_only`` blocks must not write (on SQLite they take no write lock)."""
        with self.database.session(read_only=read_only) as session:
            yield SqlUnitOfWork(session, self._secrets)

    def revocation_store(self) -> SqlRevocationStore:
        """Reads and short writes that publish CRLs and OCSP responses (never in a unit of work)."""
        return SqlRevocationStore(self.database)

    def issuance_ledger(self) -> SqlIssuanceLedger:
        """The issuance hot path's two batched writes (SQLAlchemy Core, group commit)."""
        return SqlIssuanceLedger(self.database)

    def token_reader(self) -> SqlTokenReader:
        """The API token look-up of every authenticated request (one DBAPI statement)."""
        return SqlTokenReader(self.database)

    def job_leases(self) -> SqlJobLeases:
        """The scheduler's named-job leases (short transactions of their own)."""
        return SqlJobLeases(self.database)

    def siem_cursor(self) -> SqlSiemCursor:
        """The SIEM stream's delivered-up-to cursor (short transactions of its own)."""
        return SqlSiemCursor(self.database)
