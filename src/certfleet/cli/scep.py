"""``certfleet scep``: challenge passwords and manual approval of SCEP enrolments, beside the
data or, with a server configured, over ``/api/v1/scep`` (admin), with the same output."""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import Annotated, Any
from urllib.parse import quote  # a transaction ID is one path segment: "?" must not change the route

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
from certfleet.errors import InvalidInput

app = typer.Typer(help="SCEP enrolment (RFC 8894): challenge passwords and approvals.", no_args_is_help=True)
challenge_app = typer.Typer(help="Challenge passwords.", no_args_is_help=True)
app.add_typer(challenge_app, name="challenge")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CHALLENGE_COLUMNS = ["id", "team", "profile", "allow_names", "uses_left", "manual_approval", "expires_at"]
_PENDING_COLUMNS = ["transaction_id", "team", "profile", "challenge_id", "created_at"]


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``12h``, ``7d`` (a bare number is days)."""
    match = _DURATION.match(text if not text.strip().isdigit() else f"{text.strip()}d")
    if match is None:
        raise InvalidInput(f"bad duration {text!r}: expected a number and s, m, h or d (e.g. 7d)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@challenge_app.command("create")
def create(
    team: Annotated[str, typer.Option("--team", help="Team the enrolled certificates belong to.")],
    profile: Annotated[str, typer.Option("--profile", help="Certificate profile.")] = "tls-client",
    names: Annotated[
        list[str] | None,
        typer.Option("--names", help="Name pattern the CSR may ask for (*.x, **.x, CIDR); repeat."),
    ] = None,
    uses: Annotated[int, typer.Option("--uses", help="Enrolments this challenge allows.")] = 1,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 30m, 12h, 7d.")] = "7d",
    manual_approval: Annotated[
        bool, typer.Option("--manual-approval", help="Hold requests PENDING until `scep approve`.")
    ] = False,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a challenge password and print it, alone, once: only its hash is stored."""
    lifetime = parse_duration(ttl)
    server = remote_server()
    if server is not None:
        body = {
            "team": team,
            "profile": profile,
            "names": names or [],
            "uses": uses,
            "ttl_seconds": int(lifetime.total_seconds()),
            "manual_approval": manual_approval,
        }
        created: dict[str, Any] = server.request("POST", "/api/v1/scep/challenges", json=body)
    else:
        with platform(data_dir, db) as p:
            minted = p.scep.create_challenge(
                team,
                actor="cli",
                profile=profile,
                names=names or [],
                uses=uses,
                ttl=lifetime,
                manual_approval=manual_approval,
            )
        created = {**minted.challenge.to_dict(), "password": minted.password}  # as the API answers
    if fmt is Format.JSON:
        emit_document(created)
        return
    sys.stdout.write(created["password"] + "\n")


@challenge_app.command("list")
def list_challenges(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List challenges (never their secrets)."""
    rows = listing_rows(
        "/api/v1/scep/challenges", lambda p: [c.to_dict() for c in p.scep.challenges()], data_dir, db
    )
    emit(rows, _CHALLENGE_COLUMNS, fmt)


@app.command("pending")
def pending(fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Requests waiting for approval."""
    rows = listing_rows(
        "/api/v1/scep/pending", lambda p: [t.to_dict() for t in p.scep.pending()], data_dir, db
    )
    emit(rows, _PENDING_COLUMNS, fmt)


@app.command("approve")
def approve(
    transaction_id: Annotated[str, typer.Argument(help="The request's transactionID (see `scep pending`).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Issue a pending request; the client's next poll receives the certificate."""
    server = remote_server()
    if server is not None:
        path = f"/api/v1/scep/pending/{quote(transaction_id, safe='/')}/approve"
        serial = server.request("POST", path)["serial"]
    else:
        with platform(data_dir, db) as p:
            serial = p.scep.approve(transaction_id, actor="cli").serial
    typer.echo(f"transaction {transaction_id} approved: certificate {serial}")


@app.command("reject")
def reject(
    transaction_id: Annotated[str, typer.Argument(help="The request's transactionID.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Refuse a pending request; the client's next poll receives a failure."""
    server = remote_server()
    if server is not None:
        server.request("POST", f"/api/v1/scep/pending/{quote(transaction_id, safe='/')}/reject")
    else:
        with platform(data_dir, db) as p:
            p.scep.reject(transaction_id, actor="cli")
    typer.echo(f"transaction {transaction_id} rejected")
