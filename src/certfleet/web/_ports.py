"""What the dashboard needs from the rest of certfleet, declared here by the consumer (the
composition root, certfleet.app, provides it): the services it calls, the read queries
behind its pages, and the browser-session table. The dashboard never imports the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from certfleet.access import ApiToken
from certfleet.audit import AuditRepository
from certfleet.clock import Clock
from certfleet.config import Settings
from certfleet.inventory import CertificateRecord
from certfleet.inventory.search import InventoryFilter, InventoryPage, InventoryRow
from certfleet.services import AuditService, AuthorityService, InventoryService, TokenService
from certfleet.services.crypto_report import CryptoReportService
from certfleet.services.discovery import DiscoveryService
from certfleet.services.policy import PolicyService
from certfleet.services.renewal import RenewalService
from certfleet.services.revocation import RevocationService
from certfleet.services.rotation import RotationService
from certfleet.services.scan_jobs import ScanQueue

__all__ = [
    "BrowserSession",
    "DashboardQueries",
    "RevocationFreshness",
    "SessionRepository",
    "SessionStore",
    "SessionTransaction",
    "WebPlatform",
]


class RevocationFreshness(Protocol):
    """What one CA publishes: CRLs by kind (thisUpdate, nextUpdate, number), the oldest and
    newest pre-signed OCSP response, its newest responder certificate's notAfter."""

    @property
    def crls(self) -> dict[str, tuple[dt.datetime, dt.datetime, int]]: ...
    @property
    def oldest_ocsp(self) -> dt.datetime | None: ...
    @property
    def newest_ocsp(self) -> dt.datetime | None: ...
    @property
    def responder_not_after(self) -> dt.datetime | None: ...


class DashboardQueries(Protocol):
    """Read-only queries, each its own short read transaction. Findings, scans and audit
    entries come back as rows the templates read (``Any``: their shape is the table's)."""

    def inventory_page(
        self, f: InventoryFilter, now: dt.datetime, *, limit: int, cursor: str | None = None
    ) -> InventoryPage: ...
    def inventory_count(self, f: InventoryFilter, now: dt.datetime, *, cap: int) -> int: ...
    def inventory_stream(
        self, f: InventoryFilter, now: dt.datetime, *, chunk: int = 2000
    ) -> Iterator[InventoryRow]: ...
    def status_counts(self, now: dt.datetime, team: str | None) -> dict[str, int]: ...
    def expiring_counts(self, now: dt.datetime, team: str | None, days: Sequence[int]) -> dict[int, int]: ...
    def count_expiring_between(self, start: dt.datetime, end: dt.datetime, team: str | None) -> int: ...
    def timeline(
        self, start: dt.datetime, weeks: int, now: dt.datetime, team: str | None, group_by: str
    ) -> list[tuple[int, str, int]]: ...
    def findings_by_severity(self, team: str | None) -> dict[str, int]: ...
    def revocation_freshness(self, ca_ids: Sequence[str]) -> Mapping[str, RevocationFreshness]: ...
    def findings_for_certificate(self, certificate_id: int, fingerprint_sha256: str) -> Sequence[Any]: ...
    def scans(self, team: str | None, limit: int) -> Sequence[Any]: ...
    def audit_page(
        self,
        *,
        before_seq: int | None,
        limit: int,
        action: str | None = None,
        serial: str | None = None,
        issuer: str | None = None,
    ) -> Sequence[Any]: ...
    def audit_for_certificate(self, serial: str, issuer: str, limit: int) -> Sequence[Any]: ...
    def recent_audit(self, team: str | None, limit: int, window: int = 5000) -> Sequence[Any]: ...
    def predecessors(self, certificate_id: int, limit: int) -> list[CertificateRecord]: ...


class BrowserSession(Protocol):
    """Opened with an API token, or (``token`` None) through single sign-on with the
    principal the user's groups mapped to."""

    @property
    def token(self) -> ApiToken | None: ...
    @property
    def principal_name(self) -> str | None: ...
    @property
    def team(self) -> str | None: ...
    @property
    def scope(self) -> str | None: ...
    @property
    def last_seen_at(self) -> dt.datetime: ...
    @property
    def expires_at(self) -> dt.datetime: ...


class PendingSignIn(Protocol):
    """A single sign-on attempt waiting for the provider's callback."""

    @property
    def browser_sha256(self) -> str: ...
    @property
    def nonce(self) -> str: ...
    @property
    def code_verifier(self) -> str: ...
    @property
    def next_path(self) -> str: ...


class SessionRepository(Protocol):
    """Browser sessions keyed by SHA-256 of the cookie's secret, inside one transaction."""

    def add(
        self,
        id_sha256: str,
        token_id: str | None,
        now: dt.datetime,
        expires_at: dt.datetime,
        *,
        principal: tuple[str, str | None, str] | None = None,
    ) -> None: ...
    def add_login(
        self,
        state_sha256: str,
        browser_sha256: str,
        nonce: str,
        code_verifier: str,
        next_path: str,
        expires_at: dt.datetime,
    ) -> None: ...
    def take_login(self, state_sha256: str, now: dt.datetime) -> PendingSignIn | None: ...
    def get(self, id_sha256: str) -> BrowserSession | None: ...
    def touch(self, id_sha256: str, now: dt.datetime) -> None: ...
    def delete(self, id_sha256: str) -> None: ...
    def purge(self, idle_before: dt.datetime, now: dt.datetime) -> int: ...


class SessionTransaction(Protocol):
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def audit(self) -> AuditRepository: ...


class SessionStore(Protocol):
    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[SessionTransaction]: ...


class WebPlatform(Protocol):
    """The services and read sides the dashboard's pages call."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def authorities(self) -> AuthorityService: ...
    @property
    def inventory(self) -> InventoryService: ...
    @property
    def tokens(self) -> TokenService: ...
    @property
    def audit(self) -> AuditService: ...
    @property
    def discovery(self) -> DiscoveryService: ...
    @property
    def scans(self) -> ScanQueue: ...
    @property
    def revocation(self) -> RevocationService: ...
    @property
    def policy(self) -> PolicyService: ...
    @property
    def renewal(self) -> RenewalService: ...
    @property
    def rotation(self) -> RotationService: ...
    @property
    def crypto(self) -> CryptoReportService: ...
    @property
    def web_queries(self) -> DashboardQueries: ...
    @property
    def web_sessions(self) -> SessionStore: ...
