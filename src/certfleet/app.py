"""The composition root: the one place that builds the services and wires them together."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from certfleet.audit import CHECKPOINT_KEY_FILE, load_or_create_checkpoint_key
from certfleet.ca import CaUrls
from certfleet.ca.keys import SoftwareKeyBackend, load_or_create_passphrase
from certfleet.clock import Clock, SystemClock
from certfleet.config import Settings
from certfleet.lifecycle.scheduler import Scheduler
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.protocols.acme import AcmeServer
from certfleet.protocols.acme.ari import RenewalWindow
from certfleet.protocols.acme.bindings import ServiceIssuer, ServiceRevoker
from certfleet.revocation import RevocationSettings
from certfleet.sealing import SECRETS_KEY_FILE_NAME
from certfleet.services import (
    AuditService,
    AuthorityService,
    InventoryService,
    IssuanceService,
    TokenService,
)
from certfleet.services.agents import AgentService
from certfleet.services.background_jobs import background_jobs
from certfleet.services.ca_rotation import CaRotationService
from certfleet.services.discovery import DiscoveryService
from certfleet.services.notifications import Notifications
from certfleet.services.policy import PolicyService
from certfleet.services.renewal import RenewalService
from certfleet.services.revocation import RevocationService
from certfleet.services.rotation import RotationService
from certfleet.store import Database, Store, open_secret_box

__all__ = ["Platform", "open_platform"]


@dataclass
class Platform:
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
    agents: AgentService = field(init=False)  # wired after the others: it uses acme and revocation
    renewal: RenewalService = field(init=False)  # wired last: renewal, rotation and CA rotation
    rotation: RotationService = field(init=False)  # revoke through the revocation service
    ca_rotation: CaRotationService = field(init=False)
    scheduler: Scheduler = field(init=False)  # every background job; serve runs it

    def close(self) -> None:
        self.acme.close()
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
    clock = clock or SystemClock()
    root = settings.data_dir.root
    if create:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.database_url)
    if migrate:
        database.upgrade()
    passphrase = load_or_create_passphrase(settings.passphrase_file, create=create)
    # Secrets at rest (EAB keys, channel secrets) are sealed under keys/secrets.key; opening
    # it checks it against the database and seals what an older version left in plaintext.
    secrets = open_secret_box(settings.data_dir.keys / SECRETS_KEY_FILE_NAME, database)
    store = Store(database, secrets)
    keys = SoftwareKeyBackend(settings.data_dir.keys, passphrase)
    authorities = AuthorityService(store.unit_of_work, keys, CaUrls(settings.public_base_url), clock)
    policy = PolicyService(store.unit_of_work, clock)
    issuance = IssuanceService(
        store.unit_of_work,
        authorities.issuing_authority,
        clock,
        policy=policy,
        server_authority=authorities.server_identity_authority,  # the listener's own, only
        refresh_authority=authorities.refresh,  # a CA retired by another process is dropped
    )
    platform = Platform(
        settings=settings,
        clock=clock,
        database=database,
        store=store,
        authorities=authorities,
        issuance=issuance,
        inventory=InventoryService(store.unit_of_work, clock),
        tokens=TokenService(store.unit_of_work, clock),
        audit=AuditService(
            store.unit_of_work,
            clock,
            checkpoint_key=lambda: load_or_create_checkpoint_key(
                settings.data_dir.keys / CHECKPOINT_KEY_FILE, passphrase
            ),
        ),
        acme=AcmeServer(settings.acme, store.unit_of_work, clock, ServiceIssuer(issuance)),
        discovery=DiscoveryService(store.unit_of_work, clock),
        revocation=RevocationService(
            store.unit_of_work,
            store.revocation_store(),
            keys,
            authorities.hierarchy,
            settings.public_base_url,
            RevocationSettings.load(settings.data_dir.config_file),
            clock,
        ),
        policy=policy,
        notifications=Notifications(store.unit_of_work, clock),
    )
    # revokeCert goes through the revocation service, whose keyCompromise blocks the key.
    platform.acme.set_revoker(ServiceRevoker(platform.revocation.revoke))
    platform.agents = _agent_service(platform)
    _wire_lifecycle(platform)
    platform.scheduler = Scheduler(
        store.job_leases(),
        clock,
        background_jobs(
            authorities=authorities,
            renewal=platform.renewal,
            rotation=platform.rotation,
            revocation=platform.revocation,
            notifications=platform.notifications,
        ),
    )
    return platform


def _agent_service(platform: Platform) -> AgentService:
    """Agents renew on the ACME server's ARI windows (so ``acme renew-now`` and revocations
    reach them), and revoking an agent revokes its identity certificates."""
    return AgentService(
        platform.store.unit_of_work,
        platform.issuance,
        platform.authorities.hierarchy,
        platform.clock,
        renewal_window=lambda record: _window(platform.acme.renewal_info.window_for(record)),
        revoke_certificate=lambda serial, actor: platform.revocation.revoke(
            serial, "privilegeWithdrawn", actor=actor
        ),
        # an agent's first request with a renewed identity: a campaign may revoke the old one
        identity_in_use=lambda certificate_id, agent: platform.rotation.replacement_in_use(
            certificate_id, agent
        ),
    )


def _window(window: RenewalWindow) -> tuple[dt.datetime, dt.datetime]:
    return window.start, window.end


def _wire_lifecycle(platform: Platform) -> None:
    """Renewal and campaigns issue through the same issuance service (policy included) and
    revoke through the revocation service."""
    settings = LifecycleSettings.load(platform.settings.data_dir.config_file)
    uow, clock = platform.store.unit_of_work, platform.clock

    def revoke(serial: str, reason: str, *, actor: str) -> object:
        return platform.revocation.revoke(serial, reason, actor=actor)

    platform.renewal = RenewalService(
        uow, platform.issuance, platform.authorities.hierarchy, clock, settings, revoke=revoke
    )
    platform.rotation = RotationService(uow, platform.renewal, platform.authorities, revoke, clock, settings)
    platform.ca_rotation = CaRotationService(
        platform.authorities,
        platform.rotation,
        lambda serial, reason, actor: platform.revocation.revoke_serial(serial, reason, actor=actor),
        clock,
    )
