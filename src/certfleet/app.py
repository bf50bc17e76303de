"""The composition root: the one place that builds the services and wires them together."""

from __future__ import annotations

from dataclasses import dataclass

from certfleet.ca import CaUrls
from certfleet.ca.keys import SoftwareKeyBackend, load_or_create_passphrase
from certfleet.clock import Clock, SystemClock
from certfleet.config import Settings
from certfleet.protocols.acme import AcmeServer
from certfleet.protocols.acme.bindings import ServiceIssuer
from certfleet.revocation import RevocationSettings
from certfleet.services import (
    AuditService,
    AuthorityService,
    InventoryService,
    IssuanceService,
    TokenService,
)
from certfleet.services.discovery import DiscoveryService
from certfleet.services.revocation import RevocationService
from certfleet.store import Database, Store

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

    def close(self) -> None:
        self.acme.close()
        self.revocation.close()
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
    applies pending database migrations, as ``init`` and ``serve`` do.
    """
    clock = clock or SystemClock()
    root = settings.data_dir.root
    if create:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.database_url)
    if migrate:
        database.upgrade()
    store = Store(database)
    passphrase = load_or_create_passphrase(settings.passphrase_file, create=create)
    keys = SoftwareKeyBackend(settings.data_dir.keys, passphrase)
    authorities = AuthorityService(store.unit_of_work, keys, CaUrls(settings.public_base_url), clock)
    issuance = IssuanceService(store.unit_of_work, authorities.issuing_authority, clock)
    return Platform(
        settings=settings,
        clock=clock,
        database=database,
        store=store,
        authorities=authorities,
        issuance=issuance,
        inventory=InventoryService(store.unit_of_work, clock),
        tokens=TokenService(store.unit_of_work, clock),
        audit=AuditService(store.unit_of_work),
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
    )
