"""The audit log over HTTP: list (with ``certfleet audit list``'s filters, in keyset pages)
and verify (the hash chain, and optionally signed checkpoints kept elsewhere), calling the
same :class:`~certfleet.services.AuditService` methods as the CLI. Admin tokens only: the log
records every team's actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES

__all__ = ["AUDIT_PAGE_SIZE", "router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

AUDIT_PAGE_SIZE = 1000
"""The default and largest page: about 500 KiB of JSON."""
_MAX_CHECKPOINT_LINES = 10_000  # a checkpoint a day for 27 years; the body limit bounds it too


_ENTRY_EXAMPLE: dict[str, Any] = {
    "seq": 42,
    "at": "2026-06-01T09:30:00.123456Z",
    "actor": "cli",
    "action": "certificate.issued",
    "subject": "cert:5f1c0e2a9b@CN=Example Issuing CA 1,O=Example",
    "details": {"profile": "tls-server"},
    "prev_hash": "9b" * 32,
    "hash": "4e" * 32,
}


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY_EXAMPLE]})

    seq: int
    at: str
    actor: str
    action: str
    subject: str = Field(description="cert:<serial>@<issuer name> for entries about a certificate.")
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """``items`` as ``certfleet audit list --format json`` prints them; ask again with
    ``after=next_after`` until it is null."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ENTRY_EXAMPLE], "next_after": 42}]})

    items: list[AuditEntryOut]
    next_after: int | None


class VerifyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {},
                {
                    "checkpoint_lines": [
                        '{"at":"2026-06-01T09:30:00Z","hash":"4e4e...","key_id":"5a1b...",'
                        '"seq":42,"sig":"...","v":1}'
                    ],
                    "public_key": "Yk9c...base64 Ed25519 public key...",
                },
            ]
        },
    )

    checkpoint_lines: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=_MAX_CHECKPOINT_LINES,
        description="Lines of a checkpoint file ('certfleet audit checkpoint --out FILE'): each "
        "checkpointed entry must still be in the chain, unchanged.",
    )
    public_key: str | None = Field(
        default=None,
        max_length=200,
        description="The checkpoint key's public key (base64); default: the server's checkpoint key.",
    )


class VerifyOut(BaseModel):
    """``ok`` false is a verdict, not an error: the answer is still 200."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": False,
                    "entries": 120,
                    "first_bad_seq": 57,
                    "reason": "entry 57 was altered (hash mismatch)",
                    "checkpoints": None,
                    "checkpoint_reason": None,
                    "checkpoint_line": None,
                }
            ]
        }
    )

    ok: bool
    entries: int
    first_bad_seq: int | None
    reason: str | None
    checkpoints: int | None
    checkpoint_reason: str | None
    checkpoint_line: int | None = Field(description="1-based line of the checkpoint file at fault.")


@router.get("", response_model=AuditPage, summary="List audit entries, oldest first (admin)")
async def list_audit(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    serial: Annotated[
        str | None, Query(max_length=80, description="Only entries about certificates with this serial.")
    ] = None,
    issuer: Annotated[
        str | None, Query(max_length=1000, description="Only those of this issuer: a CA id or RFC 4514 name.")
    ] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="The previous page's next_after.")] = 0,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_SIZE)] = AUDIT_PAGE_SIZE,
) -> dict[str, Any]:
    principal.require(Scope.ADMIN)

    def page() -> list[dict[str, Any]]:
        found = platform.audit.entries(serial=serial, issuer=issuer, after_seq=after, limit=limit)
        return [e.to_dict() for e in found]

    items = await run_in_threadpool(page)
    return {"items": items, "next_after": items[-1]["seq"] if len(items) == limit else None}


@router.post("/verify", response_model=VerifyOut, summary="Verify the audit log's hash chain (admin)")
async def verify_audit(body: VerifyIn, principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """The whole chain, on the server's database (as ``certfleet audit verify``); with
    ``checkpoint_lines`` also the signed checkpoints, which detects a wiped or wholly
    rewritten log."""
    principal.require(Scope.ADMIN)
    check = await run_in_threadpool(lambda: platform.audit.check(body.checkpoint_lines, body.public_key))
    return check.to_dict()
