"""``certfleet est credential create|list|revoke``: HTTP Basic credentials for EST enrolment
(RFC 7030 section 3.2.3), beside the data or, with a server configured, over
``/api/v1/est/credentials`` (admin), with the same output."""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote  # a username is one path segment: "/" or "?" must not change the route

import typer

from certfleet.cli._common import (
    CreateFormatOption,
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    emit,
    emit_document,
    platform,
)
from certfleet.cli._listing import listing_rows
from certfleet.cli._remote import remote_server

app = typer.Typer(help="EST enrolment (RFC 7030): Basic credentials per team.", no_args_is_help=True)
_COLUMNS = ["username", "team", "profile", "names", "created_at", "revoked_at"]
credential = typer.Typer(help="HTTP Basic credentials for EST clients.", no_args_is_help=True)
app.add_typer(credential, name="credential")


@credential.command("create")
def create(
    team: Annotated[str, typer.Option("--team", help="Team the enrolled certificates belong to.")],
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="The only profile (CA label) this credential may enrol under."),
    ] = None,
    names: Annotated[
        list[str] | None,
        typer.Option("--names", help="Name pattern the CSR's names must match (*.x, **.x, CIDR); repeat."),
    ] = None,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a credential and print 'username:password' once (curl --user takes it as is):
    only a hash of the password is stored. --format json: the record and the password."""
    server = remote_server()
    if server is not None:
        body = {"team": team, "profile": profile, "names": names or []}
        created: dict[str, Any] = server.request("POST", "/api/v1/est/credentials", json=body)
    else:
        with platform(data_dir, db) as p:
            minted = p.est.create_credential(team, profile=profile, names=names or [], actor="cli")
        created = {**minted.record.to_dict(), "password": minted.password}  # as the API answers
    if fmt is Format.JSON:
        emit_document(created)
        return
    sys.stdout.write(f"{created['username']}:{created['password']}\n")


@credential.command("list")
def list_credentials(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List credentials (never their passwords)."""
    rows = listing_rows(
        "/api/v1/est/credentials", lambda p: [c.to_dict() for c in p.est.list_credentials()], data_dir, db
    )
    emit(rows, _COLUMNS, fmt)


@credential.command("revoke")
def revoke(
    username: Annotated[str, typer.Argument(help="The credential's username (est_...).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a credential at once: its next request is refused."""
    server = remote_server()
    if server is not None:
        server.request("DELETE", f"/api/v1/est/credentials/{quote(username, safe='')}")
    else:
        with platform(data_dir, db) as p:
            p.est.revoke_credential(username, actor="cli")
    typer.echo(f"EST credential {username} revoked")
