from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
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
    from certfleet.store._revocation import (
        SqlBlockedKeyRepository,
        SqlRevocationRepository,
        SqlRevocationStore,
    )
    from certfleet.store._siem import SqlSiemCursor
    from certfleet.store._token_reader import SqlTokenReader
    from certfleet.store._trust_anchors import SqlTrustAnchorRepository

__all__ = ["SqlUnitOfWork", "Store"]

_Repo = TypeVar("_Repo")


class _built_on_first_use(Generic[_Repo]):
    """A repository built when first read, then kept in the unit of work's ``__dict__``
    (which a non-data descriptor gives way to). Not ``functools.cached_property``: on Python
    3.11 that holds one lock for every instance while it builds, and the server's threads
    open units of work side by side."""

    def __init__(self, build: Callable[[Any], _Repo]) -> None:
        self._build = build
        self._name = build.__name__

    @overload
    def __get__(self, owner: None, kind: type[Any]) -> _built_on_first_use[_Repo]: ...

    @overload
    def __get__(self, owner: object, kind: type[Any] | None = None) -> _Repo: ...

    def __get__(self, owner: object | None, kind: type[Any] | None = None) -> Any:
        if owner is None:
            return self
        built = self._build(owner)
        owner.__dict__[self._name] = built
        return built


class SqlUnitOfWork:
    """Every repository over one session, i.e. one transaction.

    Each repository is built (and its module imported) when a service first asks for it: a
    scan's units of work touch the discovery, certificate, audit and outbox repositories,
    and must not import the ACME protocol, the agents' or the lifecycle's models to do so
    (issue 11: ``certfleet scan``'s start-up), nor build sixteen unused objects per
    transaction."""

    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self.session = session
        self._secrets = secrets

    @_built_on_first_use
    def certificates(self) -> SqlCertificateRepository:
        from certfleet.store._repositories import SqlCertificateRepository

        return SqlCertificateRepository(self.session)

    @_built_on_first_use
    def serials(self) -> SqlSerialRepository:
        from certfleet.store._repositories import SqlSerialRepository

        return SqlSerialRepository(self.session)

    @_built_on_first_use
    def cas(self) -> SqlCaRepository:
        from certfleet.store._repositories import SqlCaRepository

        return SqlCaRepository(self.session)

    @_built_on_first_use
    def tokens(self) -> SqlTokenRepository:
        from certfleet.store._repositories import SqlTokenRepository

        return SqlTokenRepository(self.session)

    @_built_on_first_use
    def audit(self) -> SqlAuditRepository:
        from certfleet.store._repositories import SqlAuditRepository

        return SqlAuditRepository(self.session)

    @_built_on_first_use
    def revocations(self) -> SqlRevocationRepository:
        from certfleet.store._revocation import SqlRevocationRepository

        return SqlRevocationRepository(self.session)

    @_built_on_first_use
    def blocked_keys(self) -> SqlBlockedKeyRepository:
        from certfleet.store._revocation import SqlBlockedKeyRepository

        return SqlBlockedKeyRepository(self.session)

    @_built_on_first_use
    def acme(self) -> SqlAcmeRepositories:
        from certfleet.store._acme import SqlAcmeRepositories

        return SqlAcmeRepositories(self.session, self._secrets)

    @_built_on_first_use
    def scans(self) -> SqlScanRunRepository:
        from certfleet.store._discovery import SqlScanRunRepository

        return SqlScanRunRepository(self.session)

    @_built_on_first_use
    def locations(self) -> SqlLocationRepository:
        from certfleet.store._discovery import SqlLocationRepository

        return SqlLocationRepository(self.session)

    @_built_on_first_use
    def findings(self) -> SqlFindingRepository:
        from certfleet.store._discovery import SqlFindingRepository

        return SqlFindingRepository(self.session)

    @_built_on_first_use
    def trust_anchors(self) -> SqlTrustAnchorRepository:
        from certfleet.store._trust_anchors import SqlTrustAnchorRepository

        return SqlTrustAnchorRepository(self.session)

    @_built_on_first_use
    def policies(self) -> SqlPolicyRepository:
        from certfleet.store._policy import SqlPolicyRepository

        return SqlPolicyRepository(self.session)

    @_built_on_first_use
    def outbox(self) -> SqlOutboxRepository:
        from certfleet.store._notify import SqlOutboxRepository

        return SqlOutboxRepository(self.session, self._secrets)

    @_built_on_first_use
    def notify_channels(self) -> SqlChannelRepository:
        from certfleet.store._notify import SqlChannelRepository

        return SqlChannelRepository(self.session, self._secrets)

    @_built_on_first_use
    def agents(self) -> SqlAgentRepository:
        from certfleet.store._agent import SqlAgentRepository

        return SqlAgentRepository(self.session)

    @_built_on_first_use
    def lifecycle(self) -> SqlLifecycleRepositories:
        from certfleet.store._lifecycle import SqlLifecycleRepositories

        return SqlLifecycleRepositories(self.session)

    @_built_on_first_use
    def est_credentials(self) -> SqlEstCredentialRepository:
        from certfleet.store._est import SqlEstCredentialRepository

        return SqlEstCredentialRepository(self.session)


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
        from certfleet.store._revocation import SqlRevocationStore

        return SqlRevocationStore(self.database)

    def issuance_ledger(self) -> SqlIssuanceLedger:
        """The issuance hot path's two batched writes (SQLAlchemy Core, group commit)."""
        from certfleet.store._issuance_ledger import SqlIssuanceLedger

        return SqlIssuanceLedger(self.database)

    def token_reader(self) -> SqlTokenReader:
        """The API token look-up of every authenticated request (one DBAPI statement)."""
        from certfleet.store._token_reader import SqlTokenReader

        return SqlTokenReader(self.database)

    def job_leases(self) -> SqlJobLeases:
        """The scheduler's named-job leases (short transactions of their own)."""
        from certfleet.store._job_leases import SqlJobLeases

        return SqlJobLeases(self.database)

    def siem_cursor(self) -> SqlSiemCursor:
        """The SIEM stream's delivered-up-to cursor (short transactions of its own)."""
        from certfleet.store._siem import SqlSiemCursor

        return SqlSiemCursor(self.database)
