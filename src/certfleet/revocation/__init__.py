"""Revocation: reason codes, CRLs (complete and delta), OCSP requests and responses, and
delegated OCSP responder certificates. Bytes in, bytes out; time comes from a Clock."""

from __future__ import annotations

from certfleet.revocation._crl import CrlKind, RevokedEntry, build_crl
from certfleet.revocation._issuers import HASH_ALGORITHMS, CertId, IssuerIndex, IssuingCa
from certfleet.revocation._ocsp_request import (
    MAX_CERT_IDS,
    MAX_NONCE_OCTETS,
    MAX_REQUEST_BYTES,
    OcspRequest,
    decode_get_path,
    parse_ocsp_request,
)
from certfleet.revocation._ocsp_response import (
    CertStatus,
    ResponseSigner,
    SingleAnswer,
    build_response,
    error_response,
)
from certfleet.revocation._ports import (
    BlockedKeyRepository,
    CachedResponse,
    CrlState,
    Revocation,
    RevocationRepository,
    RevocationStore,
    SerialStatus,
    StoredCrl,
    StoredResponder,
)
from certfleet.revocation._published import Published, refresh_at
from certfleet.revocation._publisher import CrlPublisher, delta_crl_url
from certfleet.revocation._reasons import RevocationReason
from certfleet.revocation._responder import OcspResponder
from certfleet.revocation._settings import MAX_CRL_VALIDITY, RevocationSettings
from certfleet.revocation._signer import build_responder_certificate, rotation_due
from certfleet.revocation.errors import AlreadyRevoked, KeyBlocked, MalformedOcspRequest, UnknownReason
from certfleet.x509 import spki_sha256

__all__ = [
    "HASH_ALGORITHMS",
    "MAX_CERT_IDS",
    "MAX_CRL_VALIDITY",
    "MAX_NONCE_OCTETS",
    "MAX_REQUEST_BYTES",
    "AlreadyRevoked",
    "BlockedKeyRepository",
    "CachedResponse",
    "CertId",
    "CertStatus",
    "CrlKind",
    "CrlPublisher",
    "CrlState",
    "IssuerIndex",
    "IssuingCa",
    "KeyBlocked",
    "MalformedOcspRequest",
    "OcspRequest",
    "OcspResponder",
    "Published",
    "ResponseSigner",
    "Revocation",
    "RevocationReason",
    "RevocationRepository",
    "RevocationSettings",
    "RevocationStore",
    "RevokedEntry",
    "SerialStatus",
    "SingleAnswer",
    "StoredCrl",
    "StoredResponder",
    "UnknownReason",
    "build_crl",
    "build_responder_certificate",
    "build_response",
    "decode_get_path",
    "delta_crl_url",
    "error_response",
    "parse_ocsp_request",
    "refresh_at",
    "rotation_due",
    "spki_sha256",
]
