from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["CertificateOut", "CertificatePage", "IssueRequest", "IssueResponse"]


# Bounds at the edge keep one request from costing unbounded memory or storage; the precise
# limits (100 SANs, the profile's maximum validity) are the authority's and give better details.
_Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
_MAX_CSR_CHARS = 64 * 1024
_MAX_VALIDITY_DAYS = 100 * 366


class IssueRequest(BaseModel):
    """Either ``csr`` (PEM) or ``key_type`` (the server generates the key and returns it once).

    With a CSR and no ``sans``, the names come from the CSR's subjectAltName extension and,
    unless ``common_name`` is given, its subject CN. Types are strict: ``"30"`` is not a number.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    profile: str = Field(default="tls-server", description="tls-server, tls-client or tls-server-client.")
    csr: str | None = Field(default=None, max_length=_MAX_CSR_CHARS, description="PEM PKCS#10 CSR.")
    key_type: str | None = Field(
        default=None,
        description="Generate a key of this type instead (ec-p256, ec-p384, rsa-2048, rsa-3072, "
        "rsa-4096, ed25519, ml-dsa-44, ml-dsa-65, ml-dsa-87); the private key is returned once, "
        "unencrypted.",
    )
    common_name: str | None = None
    sans: list[str] = Field(default_factory=list, max_length=1000, description="DNS names and IPs.")
    validity_days: int | None = Field(
        default=None, ge=1, le=_MAX_VALIDITY_DAYS, description="Default: the profile's."
    )
    tags: list[_Tag] = Field(default_factory=list, max_length=50)
    team: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Owning team (default: the token's); only an admin token may name another team.",
    )


class CertificateOut(BaseModel):
    serial: str
    fingerprint_sha256: str
    subject: str
    common_name: str | None
    sans: list[str]
    issuer: str
    issuer_ca_id: str | None
    not_before: str
    not_after: str
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    profile: str | None
    source: Literal["issued", "imported", "discovered", "spiffe", "scep", "est"]
    status: Literal["active", "revoked", "expired", "superseded"]
    team: str | None
    tags: list[str]
    first_seen: str
    last_seen: str
    revoked_at: str | None
    revocation_reason: str | None


class IssueResponse(BaseModel):
    certificate: CertificateOut
    certificate_pem: str
    chain_pem: str
    fullchain_pem: str
    private_key_pem: str | None = Field(default=None, description="Only when the server generated the key.")


class CertificatePage(BaseModel):
    items: list[CertificateOut]
    next_cursor: str | None
