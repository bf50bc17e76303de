"""``certfleet token``: API tokens, beside the data or, with a server configured, over
``/api/v1/tokens`` (admin), with the same output."""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote  # an id is one path segment: "/" or "?" must not change the route

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

app = typer.Typer(help="API tokens.", no_args_is_help=True)

_COLUMNS = ["id", "team", "scope", "allow_names", "description", "created_at", "revoked_at"]


@app.command("create")
def create(
    team: Annotated[str, typer.Option("--team", help="Team the token acts for.")],
    scope: Annotated[
        str, typer.Option("--scope", help="read, issue, revoke or admin (issue does not include revoke).")
    ] = "read",
    allow_names: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-names",
            help="Name pattern an issue or revoke token may act on (*.x, **.x, CIDR); repeat.",
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="A note for the token list.")] = "",
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it, alone, once: only its hash is stored."""
    server = remote_server()
    if server is not None:
        body = {"team": team, "scope": scope, "allow_names": allow_names or [], "description": description}
        created: dict[str, Any] = server.request("POST", "/api/v1/tokens", json=body)
    else:
        from certfleet.access import Scope

        with platform(data_dir, db) as p:
            minted = p.tokens.create(
                team, Scope.parse(scope), allow_names or [], actor="cli", description=description
            )
        created = {**minted.record.to_dict(), "token": minted.token}  # as POST /api/v1/tokens answers
    if fmt is Format.JSON:
        emit_document(created)
        return
    sys.stdout.write(created["token"] + "\n")


@app.command("list")
def list_tokens(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List tokens (never their secrets)."""
    rows = listing_rows("/api/v1/tokens", lambda p: [t.to_dict() for t in p.tokens.list()], data_dir, db)
    emit(rows, _COLUMNS, fmt)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (the part after 'cf_').")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a token at once."""
    server = remote_server()
    if server is not None:
        server.request("DELETE", f"/api/v1/tokens/{quote(token_id, safe='')}")
    else:
        with platform(data_dir, db) as p:
            p.tokens.revoke(token_id, actor="cli")
    typer.echo(f"token {token_id} revoked")
