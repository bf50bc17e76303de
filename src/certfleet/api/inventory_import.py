"""Importing certificates into the inventory over HTTP, as ``certfleet inventory import``
does, through the same :meth:`~certfleet.services.InventoryService.import_sources`. Admin
tokens only: an import records certificates for any team.

The body is bounded at ``IMPORT_BODY_FACTOR`` times ``[server] max_body_bytes`` (8 MiB with
the defaults, see :mod:`certfleet.api._body_limit`); the CLI sends a larger import in several
requests."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.errors import InvalidInput

__all__ = ["MAX_IMPORT_FILES", "router"]

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

MAX_IMPORT_FILES = 1000
"""Files per request (each gets its own outcome and transaction)."""
_MAX_CONTENT_CHARS = 12 * 1024 * 1024  # the body limit is the real bound; this one is a backstop


class ImportFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=4096, description="Names the file in outcomes and audit.")
    content_base64: str = Field(
        max_length=_MAX_CONTENT_CHARS, description="The file's bytes (PEM bundle or DER), base64."
    )


class ImportIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "team": "payments",
                    "files": [
                        {"name": "certs/www.pem", "content_base64": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t..."}
                    ],
                }
            ]
        },
    )

    files: list[ImportFileIn] = Field(min_length=1, max_length=MAX_IMPORT_FILES)
    team: str | None = Field(
        default=None, min_length=1, max_length=100, description="Owning team for new ones."
    )


class ImportOutcomeOut(BaseModel):
    """One per file: certificates added, already known (by fingerprint), or why the file was
    refused (a bad file never aborts the others)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"source": "certs/www.pem", "added": 2, "duplicates": 1, "error": None},
                {
                    "source": "certs/junk.pem",
                    "added": 0,
                    "duplicates": 0,
                    "error": "certs/junk.pem: PEM data holds no CERTIFICATE block",
                },
            ]
        }
    )

    source: str
    added: int
    duplicates: int
    error: str | None


def _decoded(body: ImportIn) -> list[tuple[str, bytes]]:
    sources = []
    for index, file in enumerate(body.files):
        try:
            sources.append((file.name, base64.b64decode(file.content_base64, validate=True)))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"files[{index}].content_base64 ({file.name!r}) is not base64") from None
    return sources


@router.post(
    "/import", response_model=list[ImportOutcomeOut], summary="Import certificates (PEM or DER) (admin)"
)
async def import_certificates(
    body: ImportIn, principal: CurrentPrincipal, platform: PlatformDep
) -> list[dict[str, Any]]:
    """De-duplicated by fingerprint; each file is imported whole or not at all."""
    principal.require(Scope.ADMIN)
    sources = _decoded(body)
    outcomes = await run_in_threadpool(
        lambda: platform.inventory.import_sources(sources, actor=principal.name, team=body.team)
    )
    return [o.to_dict() for o in outcomes]
