"""``certfleet spiffe``: the trust domain (``init``) and registration entries. Entries go to
the server's ``/api/v1/spiffe/entries`` when one is configured, with the same output."""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote  # an id is one path segment

import typer

from certfleet.cli._common import (
    CreateFormatOption,
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    emit,
    emit_document,
    emit_record,
    platform,
)
from certfleet.cli._remote import local_only, remote_server

app = typer.Typer(
    help="SPIFFE workload identity: trust domain and registration entries.", no_args_is_help=True
)
entry_app = typer.Typer(
    help="Registration entries: which workload gets which SPIFFE ID.", no_args_is_help=True
)
app.add_typer(entry_app, name="entry")

_COLUMNS = ["id", "spiffe_id", "parent_id", "selectors", "ttl_seconds", "team", "svids_issued", "live_svids"]


@app.command("init")
def init(
    trust_domain: Annotated[str, typer.Option("--trust-domain", help="The trust domain, e.g. example.org.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Configure the trust domain: a SPIFFE CA under the root for X509-SVIDs and an ES256 key
    set for JWT-SVIDs (keys encrypted at rest like the CA keys)."""
    local_only("spiffe init")
    with platform(data_dir, db) as p:
        ca = p.spiffe.initialize(trust_domain, actor="cli")
    sys.stdout.write(f"trust domain {trust_domain.strip()}: SPIFFE CA {ca.name} ({ca.id})\n")


@entry_app.command("create")
def create(
    spiffe_id: Annotated[str, typer.Option("--spiffe-id", help="spiffe://TD/path given to the workload.")],
    parent: Annotated[
        str, typer.Option("--parent", help="The agent handing it out: spiffe://TD/agent/HOST.")
    ],
    selector: Annotated[
        list[str],
        typer.Option("--selector", help="type:key:value the workload must show, e.g. unix:uid:1000; repeat."),
    ],
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="SVID lifetime: 3600, 30m, 1h (default) or 1d.")
    ] = None,
    dns: Annotated[
        list[str] | None, typer.Option("--dns", help="A DNS name for the SVID too; repeat.")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="The team that owns the entry.")] = None,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Register an entry (the policy's spiffe_id_prefixes rules for the team apply)."""
    server = remote_server()
    if server is not None:
        body = {
            "spiffe_id": spiffe_id,
            "parent_id": parent,
            "selectors": selector,
            "ttl": ttl,
            "dns_names": dns or [],
            "team": team,
        }
        created: dict[str, Any] = server.request("POST", "/api/v1/spiffe/entries", json=body)
    else:
        from certfleet.spiffe import parse_ttl

        lifetime = parse_ttl(ttl) if ttl is not None else None
        with platform(data_dir, db) as p:
            entry = p.spiffe.entries.create(
                spiffe_id, parent, selector, actor="cli", ttl=lifetime, dns_names=dns or [], team=team
            )
            created = p.spiffe.entries.record(entry.id).to_dict()
    if fmt is Format.JSON:
        emit_document(created)
        return
    sys.stdout.write(f"{created['id']} {created['spiffe_id']}\n")


def _rows(data_dir: Any, db: Any, parent: str | None) -> list[dict[str, Any]]:
    server = remote_server()
    if server is not None:
        params = {"parent_id": parent} if parent else None
        found: list[dict[str, Any]] = server.request("GET", "/api/v1/spiffe/entries", params=params)
        return found
    with platform(data_dir, db) as p:
        return [r.to_dict() for r in p.spiffe.entries.records(parent_id=parent)]


@entry_app.command("list")
def list_entries(
    parent: Annotated[str | None, typer.Option("--parent", help="Only the entries of this agent.")] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List entries with their SVID counts (issued, still valid)."""
    emit(_rows(data_dir, db, parent), _COLUMNS, fmt)


@entry_app.command("show")
def show(
    entry_id: Annotated[str, typer.Argument(help="The entry's id.")],
    fmt: FormatOption = Format.JSON,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """One entry (JSON by default), with its live SVID's inventory record id and counts."""
    server = remote_server()
    if server is not None:
        emit_record(server.request("GET", f"/api/v1/spiffe/entries/{quote(entry_id, safe='')}"), fmt)
        return
    with platform(data_dir, db) as p:
        emit_record(p.spiffe.entries.record(entry_id).to_dict(), fmt)


@entry_app.command("delete")
def delete(
    entry_id: Annotated[str, typer.Argument(help="The entry's id.")],
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Also revoke its SVIDs that are still valid.")
    ] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Delete an entry: its agent stops handing out the identity at its next refresh."""
    server = remote_server()
    path = f"/api/v1/spiffe/entries/{quote(entry_id, safe='')}"
    revoked: list[str] = []
    if server is not None:
        if revoke:
            revoked = server.request("POST", f"{path}/revoke", json={"reason": "cessationOfOperation"})[
                "revoked"
            ]
        server.request("DELETE", path)
    else:
        with platform(data_dir, db) as p:
            p.spiffe.entries.record(entry_id)  # not found: nothing revoked either
            if revoke:
                revoked = p.spiffe.revoke_svids(entry_id, "cessationOfOperation", actor="cli")
            p.spiffe.entries.delete(entry_id, actor="cli")
    sys.stdout.write(f"deleted {entry_id}" + (f", revoked {len(revoked)} SVID(s)" if revoke else "") + "\n")


@entry_app.command("revoke")
def revoke_svids(
    entry_id: Annotated[str, typer.Argument(help="The entry's id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="RFC 5280 reason, e.g. keyCompromise.")
    ] = "unspecified",
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke the entry's SVIDs that are still valid: the SPIFFE CA's CRL and OCSP say so."""
    server = remote_server()
    if server is not None:
        path = f"/api/v1/spiffe/entries/{quote(entry_id, safe='')}/revoke"
        revoked: list[str] = server.request("POST", path, json={"reason": reason})["revoked"]
    else:
        with platform(data_dir, db) as p:
            revoked = p.spiffe.revoke_svids(entry_id, reason, actor="cli")
    for serial in revoked:
        sys.stdout.write(serial + "\n")
    sys.stdout.write(f"revoked {len(revoked)} SVID(s) of {entry_id}\n")
