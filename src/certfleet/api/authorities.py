"""The CA hierarchy over HTTP: what ``certfleet ca list|show|rotate|compromise`` do, calling
the same services (:mod:`certfleet.services.ca_listing`, :mod:`certfleet.services.ca_rotation`).
Reading the hierarchy needs any token (CA certificates are public material); changing it is
for admin tokens only, as on the command line, which only the server's operator can run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.errors import InvalidInput
from certfleet.lifecycle.planning import parse_duration
from certfleet.services.ca_listing import ca_detail, ca_row, ca_rows
from certfleet.x509 import KeyType

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/cas", tags=["authorities"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_CA_EXAMPLE: dict[str, Any] = {
    "id": "3f9a0c7d1e2b4a58",
    "role": "intermediate",
    "name": "Example Issuing CA 1",
    "parent": "9c1d2e3f4a5b6c7d",
    "subject": "CN=Example Issuing CA 1,O=Example",
    "key": "ec-p256",
    "not_before": "2026-01-01T00:00:00Z",
    "not_after": "2031-01-01T00:00:00Z",
    "active": True,
}


class CaOut(BaseModel):
    """One CA of the hierarchy, as ``certfleet ca list --format json`` prints it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CA_EXAMPLE]})

    id: str
    role: str = Field(description="root, intermediate or server-identity.")
    name: str
    parent: str | None
    subject: str = Field(description="The subject name, RFC 4514.")
    key: str
    not_before: str
    not_after: str
    active: bool = Field(description="False once rotated out of issuing or revoked.")


class CaDetailOut(CaOut):
    """One CA with its serial, fingerprint and certificate."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_CA_EXAMPLE,
                    "serial": "5f1c0e2a9b",
                    "fingerprint_sha256": "ab" * 32,
                    "certificate_pem": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
                }
            ]
        }
    )

    serial: str
    fingerprint_sha256: str
    certificate_pem: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RotateIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"key_type": "ec-p384"}, {}]})

    key_type: str | None = Field(
        default=None, max_length=20, description="Key type of the new CA (default: the current one's)."
    )


class CreateIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "PQ Root", "key_type": "ml-dsa-65"}]})

    name: str = Field(min_length=1, max_length=50, description="The new hierarchy's name.")
    key_type: str = Field(
        default="ml-dsa-65", max_length=20, description="Key type of its root and issuing CA."
    )


class CompromiseIn(_Strict):
    """The compromise playbook. ``confirm`` must repeat the CA's id: the request revokes the
    CA and replaces everything it issued, so a mistyped path must not do it."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"confirm": "3f9a0c7d1e2b4a58", "revoke_old_after": "0", "deadline": "24h"}]
        },
    )

    confirm: str = Field(max_length=200, description="The id of the CA in the path, repeated.")
    revoke_old_after: str = Field(
        default="0", max_length=20, description="Revoke replaced certificates this long after."
    )
    deadline: str = Field(
        default="24h",
        max_length=20,
        description="Revoke what agents and ACME clients have not replaced by then (the CA/Browser "
        "Forum's limit for a key compromise is 24 hours).",
    )


class NewCaOut(BaseModel):
    id: str
    name: str
    not_after: str


class CaWarningOut(BaseModel):
    ca: str
    severity: str
    message: str


class CaRotationOut(BaseModel):
    """What ``certfleet ca rotate|compromise --format json`` print (``compromise`` adds its
    local campaign run's progress; over the API the server works the campaign)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "new_ca": {
                        "id": "7e6d5c4b3a291807",
                        "name": "Example Issuing CA 2",
                        "not_after": "2031-06-01T00:00:00Z",
                    },
                    "retired": ["3f9a0c7d1e2b4a58"],
                    "revoked_ca": "3f9a0c7d1e2b4a58",
                    "campaign": "c6a1f0e2-5b7d-4c1e-9a3f-2d8b7e6c5a41",
                    "campaign_deadline_at": "2026-06-02T00:00:00Z",
                    "warnings": [],
                }
            ]
        }
    )

    new_ca: NewCaOut
    retired: list[str]
    revoked_ca: str | None
    campaign: str | None
    campaign_deadline_at: str | None
    warnings: list[CaWarningOut]


def _admin(principal: Principal) -> str:
    principal.require(Scope.ADMIN)
    return principal.name


@router.get("", response_model=list[CaOut], summary="List the CA hierarchy")
async def list_cas(principal: CurrentPrincipal, platform: PlatformDep) -> list[dict[str, Any]]:
    """Every CA with its validity, as ``certfleet ca list``."""
    principal.require(Scope.READ)
    return await run_in_threadpool(ca_rows, platform.authorities)


@router.get("/{ca_id}", response_model=CaDetailOut, summary="Show one CA")
async def show_ca(ca_id: str, principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    principal.require(Scope.READ)
    return await run_in_threadpool(ca_detail, platform.authorities, ca_id)


@router.post("", response_model=list[CaOut], status_code=201, summary="Create a parallel hierarchy (admin)")
async def create_ca(
    body: CreateIn, principal: CurrentPrincipal, platform: PlatformDep
) -> list[dict[str, Any]]:
    """A second hierarchy beside the first, with its own root and issuing CA (as ``certfleet
    ca create``): classic and post-quantum chains coexist; profiles choose theirs."""
    actor = _admin(principal)
    key_type = KeyType.parse(body.key_type)
    created = await run_in_threadpool(
        lambda: platform.authorities.create_hierarchy(body.name, key_type, actor=actor)
    )
    return [ca_row(ca) for ca in created]


@router.post("/rotate", response_model=CaRotationOut, summary="Rotate the issuing CA (admin)")
async def rotate_ca(body: RotateIn, principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """A new issuing intermediate under the root takes over issuance; the old one keeps
    publishing its CRL and answering OCSP. ``warnings`` name CAs that expire too soon."""
    actor = _admin(principal)
    key_type = KeyType.parse(body.key_type) if body.key_type else None
    result = await run_in_threadpool(lambda: platform.ca_rotation.rotate(key_type, actor=actor))
    return result.to_dict()


@router.post(
    "/{ca_id}/compromise", response_model=CaRotationOut, summary="Run the compromise playbook (admin)"
)
async def compromise_ca(
    ca_id: str, body: CompromiseIn, principal: CurrentPrincipal, platform: PlatformDep
) -> dict[str, Any]:
    """New intermediate, the compromised one revoked (cACompromise, on the root's CRL), and a
    campaign that reissues everything it issued; the server works the campaign, agents and
    ACME clients renew at their next check, and what is not replaced by the deadline is
    revoked. Safe to repeat."""
    actor = _admin(principal)
    if body.confirm.strip() != ca_id:
        raise InvalidInput(
            f"confirm must repeat the CA's id ({ca_id!r}): this revokes the CA and reissues "
            "everything it issued"
        )
    delay = parse_duration(body.revoke_old_after)
    within = parse_duration(body.deadline)
    if within.total_seconds() < 1:
        raise InvalidInput("deadline must be at least 1s (e.g. 24h)")
    result = await run_in_threadpool(
        lambda: platform.ca_rotation.compromise(ca_id, actor=actor, revoke_old_after=delay, deadline=within)
    )
    return result.to_dict()
