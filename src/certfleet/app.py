"""The composition root: the one place that builds the services and wires them together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from certfleet.clock import Clock, SystemClock
from certfleet.config import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certfleet.ca import CaUrls
    from certfleet.ca.keys import KeyBackend
    from certfleet.lifecycle.scheduler import Scheduler
    from certfleet.metrics import PlatformMetrics
    from certfleet.protocols.acme import AcmeServer
    from certfleet.protocols.acme.ari import RenewalWindow
    from certfleet.protocols.scep import ScepServer
    from certfleet.services import (
        AuditService,
        AuthorityService,
        InventoryService,
        IssuanceService,
        TokenService,
    )
    from certfleet.services.agents import AgentService
    from certfleet.services.ca_rotation import CaRotationService
    from certfleet.services.crypto_report import CryptoReportService
    from certfleet.services.discovery import DiscoveryService
    from certfleet.services.est import EstService
    from certfleet.services.notifications import Notifications
    from certfleet.services.policy import PolicyService
    from certfleet.services.renewal import RenewalService
    from certfleet.services.revocation import RevocationService
    from certfleet.services.rotation import RotationService
    from certfleet.services.scan_jobs import ScanQueue
    from certfleet.services.scep import ScepService
    from certfleet.services.server_identity import ServerIdentity
    from certfleet.services.spiffe import SpiffeService
    from certfleet.store import Database, Store
    from certfleet.store._web import WebQueries
    from certfleet.store._web_sessions import SqlWebSessionStore

# What the platform is built from is imported inside the functions that build it: a command
# that needs one service (``scan``: :func:`open_discovery`) starts without the web stack,
# the ACME server and every other service.

__all__ = ["DiscoveryRuntime", "Platform", "open_discovery", "open_platform", "server_identity"]


@dataclass
class Platform:
    """Everything a process serves with, built at once by :func:`open_platform`. The edges
    (api, web, metrics) reach it through the narrow ports they declare, never the store."""

    settings: Settings
    clock: Clock
    database: Database
    store: Store
    authorities: AuthorityService
    issuance: IssuanceService
    inventory: InventoryService
    tokens: TokenService
    audit: AuditService
    acme: AcmeServer
    discovery: DiscoveryService
    revocation: RevocationService
    policy: PolicyService
    notifications: Notifications
    agents: AgentService
    renewal: RenewalService
    rotation: RotationService
    ca_rotation: CaRotationService
    spiffe: SpiffeService  # SPIFFE registration, SVIDs through issuance, bundle and OIDC
    scheduler: Scheduler  # every background job; serve runs it
    scans: ScanQueue  # scans this node accepted, started by the scheduler's `scans` job
    web_queries: WebQueries  # the dashboard's read side
    web_sessions: SqlWebSessionStore  # signed-in browsers
    metrics: PlatformMetrics  # one registry per platform, shared by every listener
    keys: KeyBackend  # where CA keys live (files or an HSM); /healthz reports it
    est: EstService  # EST enrolment (RFC 7030): credentials, through the issuance service
    scep: ScepService  # SCEP challenges, transactions and approvals
    scep_server: ScepServer  # the SCEP protocol (RFC 8894) over that service and the RA
    crypto: CryptoReportService  # the cryptographic inventory (crypto report, CBOM, exposure)

    def unhealthy_reasons(self) -> list[str]:
        """Why this node must not serve now (empty when healthy): /healthz answers 503 with
        them, so a load balancer stops sending it requests. A node that lost its database
        stops issuing rather than acting alone."""
        reasons = (self.database.unavailable(), self.keys.unavailable())
        return [reason for reason in reasons if reason]

    def close(self) -> None:
        self.scans.close()
        self.acme.close()
        self.revocation.close()  # the OCSP generation check's per-thread connections
        self.database.dispose()


def open_platform(
    settings: Settings,
    *,
    clock: Clock | None = None,
    create: bool = False,
    migrate: bool = True,
) -> Platform:
    """Open (with ``create``, first make) the data directory and database, and wire services.

    ``create`` makes the data directory (0700) and a CA passphrase when missing; ``migrate``
    applies pending database migrations, as ``init`` and ``serve`` do. The secrets key is
    made whenever it is missing and nothing in the database is sealed yet.
    """
    from certfleet._enrolment_wiring import est_service, scep_services
    from certfleet.ca import CaUrls
    from certfleet.ca.keys import load_or_create_passphrase, open_key_backend
    from certfleet.lifecycle.scheduler import Scheduler
    from certfleet.metrics import PlatformMetrics
    from certfleet.protocols.acme import AcmeServer
    from certfleet.protocols.acme.bindings import ServiceIssuer, ServiceRevoker
    from certfleet.sealing import SECRETS_KEY_FILE_NAME
    from certfleet.services import (
        AuditService,
        AuthorityService,
        InventoryService,
        IssuanceService,
        TokenService,
    )
    from certfleet.services.background_jobs import background_jobs
    from certfleet.services.ca_rotation import CaRotationService
    from certfleet.services.crypto_report import CryptoReportService
    from certfleet.services.discovery import DiscoveryService
    from certfleet.services.notifications import Notifications
    from certfleet.services.policy import PolicyService
    from certfleet.services.renewal import RenewalService
    from certfleet.services.revocation import RevocationService
    from certfleet.services.rotation import RotationService
    from certfleet.services.scan_jobs import ScanJobRunner, ScanQueue
    from certfleet.services.siem import SiemSender
    from certfleet.store import Database, Store, open_secret_box
    from certfleet.store._acme_ledger import acme_issuance_ledger
    from certfleet.store._acme_nonces import node_nonce_store
    from certfleet.store._crypto_read import SqlCryptoInventory
    from certfleet.store._nodes import NodeHeartbeats
    from certfleet.store._web import WebQueries
    from certfleet.store._web_metrics import MetricsQueries
    from certfleet.store._web_sessions import SqlWebSessionStore

    clock = clock or SystemClock()
    root = settings.data_dir.root
    if create:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.database_url, lock_wait_seconds=settings.server.sqlite_lock_wait_seconds)
    if migrate:
        database.upgrade()
    passphrase = load_or_create_passphrase(settings.passphrase_file, create=create)
    # Secrets at rest (EAB keys, channel secrets) are sealed under keys/secrets.key; opening
    # it checks it against the database and seals what an older version left in plaintext.
    secrets = open_secret_box(settings.data_dir.keys / SECRETS_KEY_FILE_NAME, database)
    store = Store(database, secrets)
    uow = store.unit_of_work
    keys = open_key_backend(settings.keys, settings.data_dir.keys, passphrase)  # files or an HSM
    authorities = AuthorityService(uow, keys, CaUrls(settings.public_base_url), clock)
    policy = PolicyService(uow, clock)
    issuance = IssuanceService(
        uow,
        authorities.issuing_authority,
        clock,
        # The hot path's two batched writes (group commit); ACME's finalize moves its order in them.
        ledger=acme_issuance_ledger(database),
        policy=policy,
        server_authority=authorities.server_identity_authority,  # the listener's own, only
        refresh_authority=authorities.refresh,  # a CA retired by another process is dropped
        authority_for=authorities.authority_for,  # a profile's own hierarchy (issue 17)
        agent_identity_authority=authorities.agent_identity_authority,  # under an ML-DSA root
    )
    revocation = RevocationService(
        uow,
        store.revocation_store(),
        keys,
        authorities.hierarchy,
        settings.public_base_url,
        settings.revocation,
        clock,
    )
    # revokeCert goes through the revocation service, whose keyCompromise blocks the key.
    acme = AcmeServer(
        settings.acme,
        uow,
        clock,
        ServiceIssuer(issuance),
        ServiceRevoker(revocation.revoke),
        node_nonces=node_nonce_store(database),  # SQLite: nonces off the write lock
    )
    notifications = Notifications(uow, clock)

    # Renewal and campaigns issue through the same issuance service (policy included) and
    # revoke through the revocation service.
    def revoke(serial: str, reason: str, *, actor: str) -> object:
        return revocation.revoke(serial, reason, actor=actor)

    renewal = RenewalService(uow, issuance, authorities.hierarchy, clock, settings.lifecycle, revoke=revoke)
    rotation = RotationService(uow, renewal, authorities, revoke, clock, settings.lifecycle)
    ca_rotation = CaRotationService(
        authorities,
        rotation,
        lambda serial, reason, actor: revocation.revoke_serial(serial, reason, actor=actor),
        clock,
    )
    discovery = DiscoveryService(uow, clock)
    scans = ScanQueue(ScanJobRunner(discovery))
    # [audit.siem]: the audit log streamed to a collector by the scheduler's audit.siem job
    siem_settings = settings.audit.siem
    siem = SiemSender(uow, store.siem_cursor(), siem_settings, clock) if siem_settings else None
    scheduler = Scheduler(
        store.job_leases(),
        clock,
        background_jobs(
            authorities=authorities,
            renewal=renewal,
            rotation=rotation,
            revocation=revocation,
            notifications=notifications,
            scans=scans,
            acme_stalled=acme.resolve_stalled,
            heartbeat=NodeHeartbeats(database).beat,  # version and clock skew: db check lists every node
            siem=siem,
        ),
    )
    metrics = PlatformMetrics(
        settings.metrics,
        MetricsQueries(database),
        authorities.hierarchy,
        clock,
        key_backend=(keys.name, keys.unavailable),
        siem_backlog=siem.backlog if siem is not None else None,
    )
    scep, scep_server = scep_services(
        settings, store, authorities, revocation, policy, passphrase, clock, metrics, issuance
    )
    return Platform(
        settings=settings,
        clock=clock,
        database=database,
        store=store,
        authorities=authorities,
        issuance=issuance,
        inventory=InventoryService(uow, clock),
        tokens=TokenService(uow, clock, store.token_reader()),
        audit=AuditService(uow, clock, checkpoint_key=_checkpoint_key(settings, passphrase)),
        acme=acme,
        discovery=discovery,
        scans=scans,
        revocation=revocation,
        policy=policy,
        notifications=notifications,
        agents=_agent_service(store, issuance, authorities, clock, acme, revocation, rotation),
        renewal=renewal,
        rotation=rotation,
        ca_rotation=ca_rotation,
        spiffe=_spiffe_service(
            store, keys, authorities, policy, revocation, CaUrls(settings.public_base_url), clock
        ),
        scheduler=scheduler,
        web_queries=WebQueries(database),
        web_sessions=SqlWebSessionStore(store),
        metrics=metrics,
        keys=keys,
        est=est_service(settings, store, policy, authorities, clock, metrics, passphrase),
        scep=scep,
        scep_server=scep_server,
        crypto=CryptoReportService(SqlCryptoInventory(database), authorities.hierarchy, clock),
    )


def server_identity(platform: Platform, extra_names: tuple[str, ...]) -> ServerIdentity:
    """The HTTPS listener's certificate and key (issued or renewed when needed): the key file
    is encrypted under the CA passphrase, which only the composition root reads."""
    from certfleet.ca.keys import load_or_create_passphrase
    from certfleet.services.server_identity import ensure_server_identity

    return ensure_server_identity(
        platform.issuance,
        platform.settings.data_dir.tls,
        (*platform.settings.server.server_names, *extra_names),
        load_or_create_passphrase(platform.settings.passphrase_file, create=False),
        platform.clock,
    )


def _checkpoint_key(settings: Settings, passphrase: bytes) -> Callable[[], Ed25519PrivateKey]:
    from certfleet.audit import CHECKPOINT_KEY_FILE, load_or_create_checkpoint_key

    return lambda: load_or_create_checkpoint_key(settings.data_dir.keys / CHECKPOINT_KEY_FILE, passphrase)


def _spiffe_service(
    store: Store,
    keys: KeyBackend,
    authorities: AuthorityService,
    policy: PolicyService,
    revocation: RevocationService,
    urls: CaUrls,
    clock: Clock,
) -> SpiffeService:
    """SVIDs go through an issuance service over the SPIFFE CA (same policy, serials, blocked
    keys and audit) whose ledger keeps one inventory record per entry; revoking an entry's
    SVIDs goes through the revocation service."""
    from certfleet.inventory import Source
    from certfleet.services import IssuanceService
    from certfleet.services.spiffe import SpiffeService
    from certfleet.services.spiffe_entries import SpiffeRegistry
    from certfleet.store._spiffe import SqlSpiffeStore
    from certfleet.store._spiffe_ledger import SqlSvidLedger

    spiffe_uow = SqlSpiffeStore(store).unit_of_work
    registry = SpiffeRegistry(spiffe_uow, lambda: policy.active()[1], clock)
    return SpiffeService(
        spiffe_uow,
        registry,
        authorities,
        keys,
        urls,
        clock,
        issuance_for=lambda authority: IssuanceService(
            store.unit_of_work,
            authority,
            clock,
            ledger=SqlSvidLedger(store.database),
            policy=policy,
            source=Source.SPIFFE,
        ),
        revoke_serial=lambda serial, reason, actor: revocation.revoke_serial(serial, reason, actor=actor),
    )


def _agent_service(
    store: Store,
    issuance: IssuanceService,
    authorities: AuthorityService,
    clock: Clock,
    acme: AcmeServer,
    revocation: RevocationService,
    rotation: RotationService,
) -> AgentService:
    """Agents renew on the ACME server's ARI windows (so ``acme renew-now`` and revocations
    reach them), and revoking an agent revokes its identity certificates."""
    from certfleet.services.agents import AgentService

    return AgentService(
        store.unit_of_work,
        issuance,
        authorities.hierarchy,
        clock,
        renewal_window=lambda record: _window(acme.renewal_info.window_for(record)),
        revoke_certificate=lambda serial, actor: revocation.revoke(serial, "privilegeWithdrawn", actor=actor),
        # an agent's first request with a renewed identity: a campaign may revoke the old one
        identity_in_use=lambda certificate_id, agent: rotation.replacement_in_use(certificate_id, agent),
    )


def _window(window: RenewalWindow) -> tuple[dt.datetime, dt.datetime]:
    return window.start, window.end


@dataclass
class DiscoveryRuntime:
    """What ``certfleet scan`` runs with: the database and the discovery service only."""

    database: Database
    discovery: DiscoveryService

    def close(self) -> None:
        self.database.dispose()


def open_discovery(settings: Settings, *, clock: Clock | None = None) -> DiscoveryRuntime:
    """The discovery service on an initialised data directory's database, without the rest
    of the platform (every service, the web stack, the ACME server: about 1.5 s to import).
    Nothing is migrated: ``certfleet db upgrade``, ``init`` and ``serve`` do that. Discovery
    stores no sealed secret, so the secrets key is not opened either."""
    import importlib

    from certfleet.services.discovery import DiscoveryService
    from certfleet.store import Database, Store

    # The outbox's repository (with the sealing it imports) is the last one a scan's write
    # asks for: imported now, while `scan net`'s handshakes run in its child process, it is
    # not imported after the outcomes arrive (about 30 ms of the write's tail).
    importlib.import_module("certfleet.store._notify")

    database = Database(settings.database_url, lock_wait_seconds=settings.server.sqlite_lock_wait_seconds)
    store = Store(database)
    return DiscoveryRuntime(database, DiscoveryService(store.unit_of_work, clock or SystemClock()))
