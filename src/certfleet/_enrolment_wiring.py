"""The enrolment protocols' part of the composition root (SCEP and EST), built by
:func:`certfleet.app.open_platform` and nowhere else: each issues through the one issuance
service (same CA, policy engine, blocked keys, ledger, inventory and audit) with records
that name the protocol as their source.

Kept out of ``app.py`` so the root reads as the list of what a platform is made of; what
these build is imported inside the functions, as there (``scan`` starts without it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

    from certfleet.clock import Clock
    from certfleet.config import Settings
    from certfleet.inventory import Source
    from certfleet.lifecycle.issuance import IssuanceLedger
    from certfleet.metrics import PlatformMetrics
    from certfleet.protocols.scep import ScepServer
    from certfleet.services import AuthorityService, IssuanceService
    from certfleet.services.est import EstService
    from certfleet.services.policy import PolicyService
    from certfleet.services.revocation import RevocationService
    from certfleet.services.scep import ScepService
    from certfleet.store import Store

__all__ = ["est_service", "scep_services"]


def _issuance_as(
    source: Source,
    store: Store,
    authorities: AuthorityService,
    policy: PolicyService,
    clock: Clock,
    ledger: IssuanceLedger | None = None,
) -> IssuanceService:
    """The one issuance path (same CA, policy and ledger) for an enrolment protocol whose
    inventory records say ``source``; ``ledger``: one that also writes the protocol's rows
    in issuance's transactions (SCEP)."""
    from certfleet.services import IssuanceService

    return IssuanceService(
        store.unit_of_work,
        authorities.issuing_authority,
        clock,
        ledger=ledger or store.issuance_ledger(),
        policy=policy,
        refresh_authority=authorities.refresh,
        source=source,
        authority_for=authorities.authority_for,
    )


def _ca_certificates(authorities: AuthorityService) -> tuple[x509.Certificate, ...]:
    """What an enrolling device is given to trust: the issuing chain and the root."""
    return (*authorities.issuing_authority().chain, authorities.root().certificate)


def est_service(
    settings: Settings,
    store: Store,
    policy: PolicyService,
    authorities: AuthorityService,
    clock: Clock,
    metrics: PlatformMetrics,
    passphrase: bytes,
) -> EstService:
    """EST issues through an issuance service whose records say ``est`` (same CA, policy and
    ledger, as SCEP's); /cacerts serves the issuing chain and the root."""
    from certfleet.inventory import Source
    from certfleet.services.est import EstService, listener_identity
    from certfleet.store._est import SqlEstCredentialReader

    return EstService(
        store.unit_of_work,
        _issuance_as(Source.EST, store, authorities, policy, clock),
        lambda: _ca_certificates(authorities),
        clock,
        count=lambda outcome: metrics.requests.count_enrolment("est", outcome),
        # serverkeygen's encrypted key packages are signed by the listener's identity
        signing_identity=lambda: listener_identity(settings.data_dir.tls, passphrase),
        lookup=SqlEstCredentialReader(store.database),  # one statement per request
    )


def scep_services(
    settings: Settings,
    store: Store,
    authorities: AuthorityService,
    revocation: RevocationService,
    policy: PolicyService,
    passphrase: bytes,
    clock: Clock,
    metrics: PlatformMetrics,
    issuance: IssuanceService,
) -> tuple[ScepService, ScepServer]:
    """SCEP issues through an issuance service whose records say ``scep`` (same CA, policy
    and ledger; the ledger also writes the SCEP transaction and the challenge's use in
    issuance's transactions); the RA key is encrypted under the CA passphrase in the keys
    directory, its certificate issued by ``issuance`` (the platform's own)."""
    from certfleet.inventory import Source
    from certfleet.protocols.scep import ScepServer
    from certfleet.protocols.scep.bindings import ServiceBackend
    from certfleet.services._scep_ra import RegistrationAuthority
    from certfleet.services.scep import ScepService
    from certfleet.store._scep import SqlScepStore
    from certfleet.store._scep_ledger import SqlScepLedger

    scep_issuance = _issuance_as(
        Source.SCEP, store, authorities, policy, clock, SqlScepLedger(store.database)
    )

    def chain() -> tuple[x509.Certificate, ...]:
        return _ca_certificates(authorities)

    service = ScepService(
        SqlScepStore(store.database),
        store.unit_of_work,
        scep_issuance,
        authorities.hierarchy,
        lambda ca_id: revocation.crl(ca_id).der,
        clock,
    )
    ra = RegistrationAuthority(
        issuance,
        settings.data_dir.keys,
        lambda: passphrase,
        lambda: authorities.issuing_authority().issuer.certificate,
        chain,
        clock,
    )
    server = ScepServer(
        ServiceBackend(service, ra),
        clock,
        observe=lambda message, outcome: metrics.requests.count_enrolment("scep", outcome),
    )
    return service, server
