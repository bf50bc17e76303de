"""An RFC 8555 ACME server with external account binding, ARI (RFC 9773), CAA (RFC 8659)
and the challenges http-01, dns-01 and tls-alpn-01 (RFC 8737), without any web framework:
``certfleet.api.acme`` routes HTTP to :class:`AcmeServer`."""

from __future__ import annotations

from certfleet.protocols.acme._ports import (
    AcmeRepositories,
    AcmeUnitOfWork,
    AcmeUnitOfWorkFactory,
    FinalizeClaim,
    IssuedChain,
    IssueOrder,
    Issuer,
    OrderIssued,
    Revoker,
)
from certfleet.protocols.acme.accounts import Account, AccountStatus
from certfleet.protocols.acme.ari import CertId, RenewalOverride, RenewalWindow, cert_id_of, default_window
from certfleet.protocols.acme.authentication import AcmeRequest
from certfleet.protocols.acme.authorizations import Authorization, AuthzStatus, Challenge, ChallengeStatus
from certfleet.protocols.acme.eab import EabKey, MintedEabKey
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.orders import Order, OrderStatus
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.renewal import RenewNowOutcome
from certfleet.protocols.acme.responses import AcmeResponse
from certfleet.protocols.acme.server import AcmeServer, Endpoint
from certfleet.protocols.acme.urls import AcmeUrls

__all__ = [
    "Account",
    "AccountStatus",
    "AcmeProblem",
    "AcmeRepositories",
    "AcmeRequest",
    "AcmeResponse",
    "AcmeServer",
    "AcmeUnitOfWork",
    "AcmeUnitOfWorkFactory",
    "AcmeUrls",
    "Authorization",
    "AuthzStatus",
    "CertId",
    "Challenge",
    "ChallengeStatus",
    "EabKey",
    "Endpoint",
    "FinalizeClaim",
    "Identifier",
    "IssueOrder",
    "IssuedChain",
    "Issuer",
    "MintedEabKey",
    "Order",
    "OrderIssued",
    "OrderStatus",
    "RenewNowOutcome",
    "RenewalOverride",
    "RenewalWindow",
    "Revoker",
    "cert_id_of",
    "default_window",
]
