"""The agent as the SPIFFE workload endpoint: the Workload API (gRPC on a Unix socket) with
workload attestation from the socket's peer, SVID keys made here and SVIDs from the
certfleet server, cached and rotated at half their lifetime."""

from __future__ import annotations

from certfleet.agent.workload.attestation import PeerCredentials, Workload
from certfleet.agent.workload.endpoint import DEFAULT_SYNC_INTERVAL, WorkloadEndpoint
from certfleet.agent.workload.errors import AttestationFailed, NoIdentity, WorkloadError
from certfleet.agent.workload.remote import ServerSvidSource
from certfleet.agent.workload.source import (
    EntrySet,
    IssuedJwt,
    IssuedX509,
    RegistrationEntry,
    SvidRequest,
    SvidSource,
    TrustBundle,
)

__all__ = [
    "DEFAULT_SYNC_INTERVAL",
    "AttestationFailed",
    "EntrySet",
    "IssuedJwt",
    "IssuedX509",
    "NoIdentity",
    "PeerCredentials",
    "RegistrationEntry",
    "ServerSvidSource",
    "SvidRequest",
    "SvidSource",
    "TrustBundle",
    "Workload",
    "WorkloadEndpoint",
    "WorkloadError",
]
