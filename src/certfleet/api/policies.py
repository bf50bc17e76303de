"""The policy over HTTP: apply a document (or dry-run the apply), show a version, list the
history, report compliance, and test a document against the inventory before applying it.
Reading the rules takes the read scope; applying and the reports (every team's certificates)
take admin, as ``certfleet policy`` beside the data does."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from certfleet.access import Scope
from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.policy.presets import PRESET_NAMES
from certfleet.services.compliance import ComplianceReport, compliance_report
from certfleet.services.policy import ApplyOutcome

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/policies", tags=["policies"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]
PresetName = Literal["cabf-tls", "nist-sp800-131a", "nist-sp800-57"]  # PRESET_NAMES

_MAX_DOCUMENT_CHARS = 512 * 1024
_DOCUMENT_EXAMPLE = "rules:\n  - name: no-rsa-2048\n    key_types: [ec-p256, ec-p384, rsa-3072, rsa-4096]\n"
_VERSION_EXAMPLE: dict[str, Any] = {
    "version": 3,
    "created_at": "2026-12-03T10:00:00Z",
    "actor": "token:3f9a0c1b2d4e",
    "sha256": "5d41402abc4b2a76b9719d911017c592" * 2,
    "rules": 1,
}


class PolicyApply(StrictBody):
    document: str | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_DOCUMENT_CHARS,
        description="The policy (YAML); without it, presets are layered onto the policy in force.",
    )
    presets: list[PresetName] = Field(
        default_factory=list,
        max_length=len(PRESET_NAMES),
        description="Shipped compliance presets layered onto the document (the stricter rule wins).",
    )
    source: str = Field(default="api", max_length=500, description="Where it came from, for the audit log.")
    dry_run: bool = Field(
        default=False, description="Parse, check and say what applying would do; store nothing."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"document": _DOCUMENT_EXAMPLE, "source": "policy.yaml", "dry_run": True},
                {"presets": ["cabf-tls"], "source": "--preset cabf-tls"},
            ]
        }
    )

    @model_validator(mode="after")
    def _something(self) -> PolicyApply:
        if self.document is None and not self.presets:
            raise ValueError("give a document, presets, or both")
        return self


class PolicyTest(StrictBody):
    document: str = Field(
        min_length=1, max_length=_MAX_DOCUMENT_CHARS, description="The policy (YAML) to try."
    )
    source: str = Field(default="api", max_length=500, description="Its name, echoed in the report.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"document": _DOCUMENT_EXAMPLE, "source": "policy.yaml"}]}
    )


class PolicyVersionOut(BaseModel):
    """A version as ``certfleet policy history --format json`` lists it."""

    version: int
    created_at: str | None
    actor: str
    sha256: str
    rules: int

    model_config = ConfigDict(json_schema_extra={"examples": [_VERSION_EXAMPLE]})


class PolicyOut(PolicyVersionOut):
    """A version with its document, as ``certfleet policy show --format json`` prints it."""

    document: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_VERSION_EXAMPLE, "document": _DOCUMENT_EXAMPLE}]}
    )


class ApplyOut(PolicyVersionOut):
    changed: bool = Field(description="False: the document equals the version in force (nothing stored).")
    dry_run: bool

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_VERSION_EXAMPLE, "changed": True, "dry_run": False}]}
    )


assert set(get_args(PresetName)) == set(PRESET_NAMES), "the API's preset names must be the shipped ones"


class ViolationRow(BaseModel):
    serial: str
    fingerprint_sha256: str
    subject: str
    sans: list[str]
    team: str | None
    profile: str | None
    issuer: str
    key_type: str
    not_after: str | None
    status: str
    rule: str
    check: str
    severity: str
    enforce: bool
    reason: str
    preset: str | None = Field(default=None, description="The shipped preset the rule comes from.")
    clause: str | None = Field(default=None, description="The preset's clause broken, as cited.")


class TeamCompliance(BaseModel):
    certificates: int
    compliant: int
    violating: int
    violations: int
    by_rule: dict[str, int]


class ComplianceSummary(TeamCompliance):
    by_team: dict[str, TeamCompliance] = Field(
        default_factory=dict, description='The same counts per team ("": certificates of no team).'
    )


class ReportOut(BaseModel):
    """Streamed (one violation a line), exactly as ``certfleet policy report --format json``."""

    policy_version: int | None = Field(description="The version judged by; null for a test.")
    source: str | None = Field(default=None, description="Only for a test: the document's name.")
    violations: list[ViolationRow]
    summary: ComplianceSummary

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policy_version": 3,
                    "violations": [],
                    "summary": {
                        "certificates": 120,
                        "compliant": 120,
                        "violating": 0,
                        "violations": 0,
                        "by_rule": {},
                    },
                }
            ]
        }
    )


def _stream(report: ComplianceReport) -> Response:
    # A sync iterator: Starlette pulls it in the thread pool, page by page (flat memory).
    return StreamingResponse(report.json_chunks(), media_type="application/json")


@router.get("", response_model=list[PolicyVersionOut], summary="List policy versions")
async def history(principal: CurrentPrincipal, platform: PlatformDep) -> list[dict[str, Any]]:
    """Applied versions, newest first (read scope)."""
    principal.require(Scope.READ)
    return [v.to_dict() for v in await run_in_threadpool(platform.policy.history)]


@router.post(
    "",
    response_model=ApplyOut,
    status_code=201,
    responses={200: {"description": "Unchanged, or a dry run: nothing stored", "model": ApplyOut}},
    summary="Apply a policy (or dry-run the apply)",
)
async def apply(
    body: PolicyApply, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Store the document as the next version (admin, audited) and enforce it from the next
    request on. 201 when a version was stored; 200 when unchanged or ``dry_run``."""
    require_admin(principal)

    def applied() -> ApplyOutcome:
        if body.presets:
            return platform.policy.apply_presets(
                body.presets, body.document, source=body.source, actor=principal.name, dry_run=body.dry_run
            )
        assert body.document is not None  # the model's validator
        return platform.policy.apply(
            body.document, source=body.source, actor=principal.name, dry_run=body.dry_run
        )

    outcome = await run_in_threadpool(applied)
    if not outcome.changed or outcome.dry_run:
        response.status_code = 200
    else:
        response.headers["Location"] = f"{router.prefix}/{outcome.version.version}"
    return outcome.to_dict()


@router.get("/report", response_model=ReportOut, summary="Policy compliance of the inventory")
async def report(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    preset: Annotated[
        list[PresetName] | None,
        Query(description="Judge by these shipped presets alone (rows cite the clause broken)."),
    ] = None,
) -> Response:
    """Every active certificate judged by the policy in force (admin), or by the named
    presets: one row per violation."""
    require_admin(principal)
    presets = list(preset or [])
    return _stream(await run_in_threadpool(lambda: compliance_report(platform.policy, presets=presets)))


@router.post("/test", response_model=ReportOut, summary="Dry-run a policy against the inventory")
async def test(body: PolicyTest, principal: CurrentPrincipal, platform: PlatformDep) -> Response:
    """Which active certificates the document's rules would flag, before applying it (admin).
    A document that does not parse is 400 before any row."""
    require_admin(principal)
    found = await run_in_threadpool(
        lambda: compliance_report(platform.policy, body.document, source=body.source)
    )
    return _stream(found)


@router.get("/current", response_model=PolicyOut, summary="Show the policy in force")
async def current(principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """The version in force with its document (read scope); 404 before any apply."""
    principal.require(Scope.READ)
    stored = await run_in_threadpool(platform.policy.show)
    return {**stored.to_dict(), "document": stored.document}


@router.get("/{version}", response_model=PolicyOut, summary="Show a policy version")
async def show(
    version: Annotated[int, Path(ge=1, le=2**31, description="A version number from the history.")],
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> dict[str, Any]:
    """A past (or the current) version with its document (read scope)."""
    principal.require(Scope.READ)
    stored = await run_in_threadpool(platform.policy.show, version)
    return {**stored.to_dict(), "document": stored.document}
