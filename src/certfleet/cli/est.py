"""``certfleet est credential create|list|revoke``: HTTP Basic credentials for EST enrolment
(RFC 7030 section 3.2.3)."""

from __future__ import annotations

import sys
from typing import Annotated

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

app = typer.Typer(help="EST enrolment (RFC 7030): Basic credentials per team.", no_args_is_help=True)
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
    with platform(data_dir, db) as p:
        minted = p.est.create_credential(team, profile=profile, names=names or [], actor="cli")
    if fmt is Format.JSON:
        emit_document({**minted.record.to_dict(), "password": minted.password})
        return
    sys.stdout.write(minted.basic + "\n")


@credential.command("list")
def list_credentials(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List credentials (never their passwords)."""
    with platform(data_dir, db) as p:
        rows = [c.to_dict() for c in p.est.list_credentials()]
    emit(rows, ["username", "team", "profile", "names", "created_at", "revoked_at"], fmt)


@credential.command("revoke")
def revoke(
    username: Annotated[str, typer.Argument(help="The credential's username (est_...).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a credential at once: its next request is refused."""
    with platform(data_dir, db) as p:
        p.est.revoke_credential(username, actor="cli")
    typer.echo(f"EST credential {username} revoked")
