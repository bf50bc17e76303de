"""The private CA: hierarchy, profiles, serials, key backends and the issuing authority."""

from __future__ import annotations

from certfleet.ca._authority import Authority, IssuanceRequest, IssuedCertificate, ValidatedRequest
from certfleet.ca._hierarchy import (
    BACKDATE,
    INTERMEDIATE_LIFETIME,
    ROOT_LIFETIME,
    CaCertificate,
    CaUrls,
    build_intermediate,
    build_root,
    ca_id_for,
    chain_below_root,
)
from certfleet.ca._profiles import PROFILES, SCEP_RA_PROFILE, Profile, get_profile
from certfleet.ca._registry import CaRepository
from certfleet.ca._serials import SERIAL_BITS, new_serial_number
from certfleet.ca._server_identity import (
    AGENT_IDENTITY_ROLE,
    LISTENER_ROOT_ROLE,
    SERVER_IDENTITY_ROLE,
    SERVER_IDENTITY_UNIT,
    build_agent_identity_ca,
    build_server_identity_ca,
    is_server_identity_ca,
    listener_root_name,
    tls_stack_can_use,
)
from certfleet.ca._spiffe_ca import SPIFFE_ROLE, build_spiffe_ca
from certfleet.ca.errors import CaKeyError, UnknownProfile, ValidityTooLong

__all__ = [
    "AGENT_IDENTITY_ROLE",
    "BACKDATE",
    "INTERMEDIATE_LIFETIME",
    "LISTENER_ROOT_ROLE",
    "PROFILES",
    "ROOT_LIFETIME",
    "SCEP_RA_PROFILE",
    "SERIAL_BITS",
    "SERVER_IDENTITY_ROLE",
    "SERVER_IDENTITY_UNIT",
    "SPIFFE_ROLE",
    "Authority",
    "CaCertificate",
    "CaKeyError",
    "CaRepository",
    "CaUrls",
    "IssuanceRequest",
    "IssuedCertificate",
    "Profile",
    "UnknownProfile",
    "ValidatedRequest",
    "ValidityTooLong",
    "build_agent_identity_ca",
    "build_intermediate",
    "build_root",
    "build_server_identity_ca",
    "build_spiffe_ca",
    "ca_id_for",
    "chain_below_root",
    "get_profile",
    "is_server_identity_ca",
    "listener_root_name",
    "new_serial_number",
    "tls_stack_can_use",
]
