"""``certfleet ca rotate`` and ``certfleet ca compromise`` (registered on the ``ca`` group)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, platform
from certfleet.cli._remote import remote_server
from certfleet.cli.rotate import run_with_progress
from certfleet.lifecycle.campaigns import ItemState
from certfleet.lifecycle.planning import parse_duration
from certfleet.x509 import KeyType

__all__ = ["compromise", "rotate"]

_err = Console(emoji=False, stderr=True, highlight=False, soft_wrap=True)


def _warn(warnings: list[dict[str, Any]]) -> None:
    for warning in warnings:
        _err.print(f"{warning['severity']}: {warning['message']}", markup=False)


def _show(result: dict[str, Any], fmt: Format, headline: str) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    typer.echo(headline)
    if result["retired"]:
        typer.echo(f"retired from issuing (still publishing CRLs and OCSP): {', '.join(result['retired'])}")


def rotate(
    key_type: Annotated[
        str | None, typer.Option("--key-type", help="Key type of the new CA (default: the current one's).")
    ] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a new issuing intermediate under the root and switch issuance to it; the old one
    keeps serving CRLs and OCSP. Warns when the root expires too soon."""
    server = remote_server()
    if server is not None:
        result: dict[str, Any] = server.request("POST", "/api/v1/cas/rotate", json={"key_type": key_type})
    else:
        with platform(data_dir, db) as p:
            result = p.ca_rotation.rotate(
                KeyType.parse(key_type) if key_type else None, actor="cli"
            ).to_dict()
    _warn(result["warnings"])
    new = result["new_ca"]
    _show(result, fmt, f"issuing CA is now {new['id']} ({new['name']}), valid until {new['not_after'][:10]}")


def compromise(
    ca_id: Annotated[
        str, typer.Argument(help="Id of the compromised intermediate (see 'certfleet ca list').")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: revoke the CA and replace all it issued.")
    ] = False,
    revoke_old_after: Annotated[
        str,
        typer.Option("--revoke-old-after", help="Revoke replaced certificates this long after (default 0)."),
    ] = "0",
    deadline: Annotated[
        str,
        typer.Option(
            "--deadline",
            help="Revoke what agents and ACME clients have not replaced by then (default 24h, the "
            "CA/Browser Forum's limit for a key compromise).",
        ),
    ] = "24h",
    no_run: Annotated[bool, typer.Option("--no-run", help="Create the campaign; let serve work it.")] = False,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """The compromise playbook: new intermediate, revoke the compromised one (on the root's
    CRL), rotate every certificate it issued; agents and ACME clients renew at once, and
    whatever they have not replaced by the deadline is revoked. Safe to run again."""
    if not yes:
        die("this revokes the CA and reissues everything it issued: add --yes to proceed")
    delay = parse_duration(revoke_old_after)
    within = parse_duration(deadline)
    if within.total_seconds() < 1:
        die("--deadline must be at least 1s (e.g. 24h)")
    server = remote_server()
    progress: dict[str, Any] | None = None
    report = None
    if server is not None:
        # The confirmation travels as the CA's id repeated; the server works the campaign.
        body = {"confirm": ca_id, "revoke_old_after": revoke_old_after, "deadline": deadline}
        result: dict[str, Any] = server.request(
            "POST", f"/api/v1/cas/{quote(ca_id, safe='')}/compromise", json=body
        )
        _warn(result["warnings"])
    else:
        with platform(data_dir, db) as p:
            done = p.ca_rotation.compromise(ca_id, actor="cli", revoke_old_after=delay, deadline=within)
            result = done.to_dict()
            _warn(result["warnings"])
            if done.campaign is not None and not no_run:
                report = run_with_progress(p, done.campaign.id, fmt=fmt, show=False)
                progress = report.to_dict()["progress"]
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps({**result, "campaign_progress": progress}, indent=2) + "\n")
        return
    campaign = result["campaign"]
    _show(result, fmt, f"revoked CA {result['revoked_ca']}; issuing CA is now {result['new_ca']['id']}")
    if campaign is None:
        typer.echo("no active certificate of that CA to replace")
    elif server is not None:
        typer.echo(f"campaign {campaign} created: the server works it ('certfleet rotate status {campaign}')")
    elif report is None:
        typer.echo(f"campaign {campaign} created: 'certfleet rotate resume {campaign}'")
    else:
        counts = report.counts
        typer.echo(
            f"campaign {campaign} {report.campaign.status.value}: "
            f"{counts.of(ItemState.REISSUED)}/{counts.total} reissued, {counts.old_revoked} old revoked"
        )
    if result["campaign_deadline_at"] is not None:
        deadline_at = result["campaign_deadline_at"].replace("T", " ").removesuffix("Z")
        typer.echo(
            f"agents and ACME clients renew at their next check; what is not replaced by "
            f"{deadline_at} UTC is revoked anyway ('certfleet rotate status {campaign}')"
        )
