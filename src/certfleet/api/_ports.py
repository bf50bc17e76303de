"""What the HTTP edge needs from the platform, declared by the consumer. The composition root
(certfleet.app) satisfies it structurally, so api sits below app in the layers and never
imports the store: the dashboard's and the metrics' own ports are part of it."""

from __future__ import annotations

from typing import Protocol

from certfleet.metrics import MetricsHost, PlatformMetrics
from certfleet.protocols.acme import AcmeServer
from certfleet.protocols.scep import ScepServer
from certfleet.services import IssuanceService
from certfleet.services.agents import AgentService
from certfleet.services.ca_rotation import CaRotationService
from certfleet.services.est import EstService
from certfleet.services.notifications import Notifications
from certfleet.services.scep import ScepService
from certfleet.web import WebPlatform

__all__ = ["Platform"]


class Platform(WebPlatform, MetricsHost, Protocol):
    """The services the REST API, ACME, the public listener, the dashboard and ``/metrics``
    call. Background jobs are not the API's business: ``serve`` runs the platform's
    scheduler beside the listeners."""

    @property
    def issuance(self) -> IssuanceService: ...
    @property
    def acme(self) -> AcmeServer: ...
    @property
    def agents(self) -> AgentService: ...
    @property
    def metrics(self) -> PlatformMetrics: ...
    @property
    def est(self) -> EstService: ...
    @property
    def scep(self) -> ScepService: ...
    @property
    def scep_server(self) -> ScepServer: ...
    @property
    def ca_rotation(self) -> CaRotationService: ...
    @property
    def notifications(self) -> Notifications: ...
    def unhealthy_reasons(self) -> list[str]:
        """Why this node must not serve now (its database unreachable, ...); empty if well."""
        ...
