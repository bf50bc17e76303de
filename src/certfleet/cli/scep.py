"""``certfleet scep``: challenge passwords and manual approval of SCEP enrolments."""

from __future__ import annotations

import datetime as dt
import re
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
from certfleet.errors import InvalidInput

app = typer.Typer(help="SCEP enrolment (RFC 8894): challenge passwords and approvals.", no_args_is_help=True)
challenge_app = typer.Typer(help="Challenge passwords.", no_args_is_help=True)
app.add_typer(challenge_app, name="challenge")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


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
    if fmt is Format.JSON:
        emit_document({**minted.challenge.to_dict(), "password": minted.password})
        return
    sys.stdout.write(minted.password + "\n")


@challenge_app.command("list")
def list_challenges(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List challenges (never their secrets)."""
    with platform(data_dir, db) as p:
        rows = [c.to_dict() for c in p.scep.challenges()]
    emit(rows, ["id", "team", "profile", "allow_names", "uses_left", "manual_approval", "expires_at"], fmt)


@app.command("pending")
def pending(fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Requests waiting for approval."""
    with platform(data_dir, db) as p:
        rows = [t.to_dict() for t in p.scep.pending()]
    emit(rows, ["transaction_id", "team", "profile", "challenge_id", "created_at"], fmt)


@app.command("approve")
def approve(
    transaction_id: Annotated[str, typer.Argument(help="The request's transactionID (see `scep pending`).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Issue a pending request; the client's next poll receives the certificate."""
    with platform(data_dir, db) as p:
        transaction = p.scep.approve(transaction_id, actor="cli")
    typer.echo(f"transaction {transaction_id} approved: certificate {transaction.serial}")


@app.command("reject")
def reject(
    transaction_id: Annotated[str, typer.Argument(help="The request's transactionID.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Refuse a pending request; the client's next poll receives a failure."""
    with platform(data_dir, db) as p:
        p.scep.reject(transaction_id, actor="cli")
    typer.echo(f"transaction {transaction_id} rejected")
