from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CertificateOut", "CertificatePage", "IssueRequest", "IssueResponse"]


class IssueRequest(BaseModel):
    """Either ``csr`` (PEM) or ``key_type`` (the server generates the key and returns it once)."""

    model_config = ConfigDict(extra="forbid")

    profile: str = "tls-server"
    csr: str | None = Field(default=None, description="PEM-encoded PKCS#10 CSR.")
    key_type: str | None = Field(default=None, description="Generate a key of this type instead of a CSR.")
    common_name: str | None = None
    sans: list[str] = Field(default_factory=list, max_length=1000)
    validity_days: int | None = Field(default=None, ge=1)
    tags: list[str] = Field(default_factory=list, max_length=50)


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
    source: Literal["issued", "imported", "discovered"]
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
