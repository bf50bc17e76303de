"""``certfleet rotate``: mass rotation campaigns, their status, and resuming one."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from certfleet.app import Platform
from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, emit, platform
from certfleet.cli._remote import RemoteServer, remote_server
from certfleet.lifecycle.campaigns import CampaignItem, CampaignReport, CampaignRequest, ItemState
from certfleet.lifecycle.planning import parse_duration
from certfleet.lifecycle.selection import FIELDS, Selection
from certfleet.x509 import KeyType

__all__ = ["app", "run_with_progress"]

app = typer.Typer(help="Mass rotation campaigns: replace every selected certificate.")

_ITEM_COLUMNS = ["serial", "action", "holder", "milestone", "successor_serial", "waiting_for", "since"]
_WAITING_COLUMNS = ["serial", "action", "holder", "state", "waiting_for", "since"]
_WAITING_SHOWN = 100
_DRY_RUN_COLUMNS = ["serial", "names", "key", "issuer_ca_id", "team", "action", "note"]
_LIST_COLUMNS = ["id", "kind", "status", "selection", "total", "reissued", "created_at"]


def _print_report(report: CampaignReport | dict[str, Any], fmt: Format) -> None:
    data = report if isinstance(report, dict) else report.to_dict()
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    row = {**{k: v for k, v in data.items() if k != "progress"}, **data["progress"]}
    columns = ["id", "kind", "status", "selection", "deadline", "total", "pending", "awaiting-key"]
    columns += ["awaiting-client", "failed", "reissued", "skipped", "overdue-revoked", "deployed"]
    columns += ["confirmed", "old_revoked"]
    emit([row], columns, fmt, title="Campaign")


def run_with_progress(
    p: Platform, campaign_id: str, *, fmt: Format = Format.TABLE, show: bool = True
) -> CampaignReport:
    """Work a campaign: a progress bar on a terminal, one line per item otherwise (so a log,
    or a test, can follow it); then print the campaign's state."""
    before = p.rotation.report(campaign_id)
    done = before.counts.of(ItemState.REISSUED) + before.counts.of(ItemState.SKIPPED)
    total = before.counts.total
    stream = sys.stderr if fmt is Format.JSON else sys.stdout
    bar: Progress | None = None
    if stream.isatty():
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        bar = Progress(*columns, console=Console(emoji=False, file=stream))
    task = bar.add_task(f"campaign {campaign_id[:8]}", total=total, completed=done) if bar else None
    counted = {"n": done}

    def progress(item: CampaignItem, state: ItemState) -> None:
        finished = state in (ItemState.REISSUED, ItemState.SKIPPED)
        counted["n"] += finished
        if bar is not None and task is not None:
            bar.advance(task, advance=int(finished))
        else:
            stream.write(f"progress: {state.value} {item.serial} {counted['n']}/{total}\n")
            stream.flush()

    with bar if bar is not None else contextlib.nullcontext():
        report = p.rotation.run_to_end(campaign_id, progress=progress)
    if show:
        _print_report(report, fmt)
    return report


@app.callback(invoke_without_command=True)
def rotate(
    ctx: typer.Context,
    select: Annotated[
        str | None,
        typer.Option(
            "--select", help=f"Selection, e.g. key=rsa-2048,issuer=<ca-id>. Fields: {', '.join(FIELDS)}."
        ),
    ] = None,
    to_key_type: Annotated[
        str | None,
        typer.Option("--to-key-type", help="New key type, e.g. ec-p256 (a new key per certificate)."),
    ] = None,
    to_ca: Annotated[
        str | None, typer.Option("--to-ca", help="The issuing CA to move to (the current one).")
    ] = None,
    to_profile: Annotated[
        str | None,
        typer.Option(
            "--to-profile",
            help="Reissue under this profile and the CA it names, e.g. internal-mtls-pq (ML-DSA).",
        ),
    ] = None,
    revoke_old_after: Annotated[
        str | None,
        typer.Option("--revoke-old-after", help="Revoke each old certificate this long after (e.g. 7d)."),
    ] = None,
    generate_keys: Annotated[
        Path | None,
        typer.Option(
            "--generate-keys",
            help="With --to-key-type: certfleet makes the new keys and writes them (0600) with the "
            "certificates to DIR/<old serial>/ for you to deploy.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what the campaign would do.")] = False,
    no_run: Annotated[
        bool, typer.Option("--no-run", help="Create it; let 'serve' or 'resume' work it.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a rotation campaign and work it (resumable: 'certfleet rotate resume ID')."""
    if ctx.invoked_subcommand is not None:
        return
    if select is None:
        die("give --select EXPR, or a subcommand (status, resume, list)")
    server = remote_server()
    if server is not None:
        if generate_keys is not None:
            die("--generate-keys writes new private keys beside the data directory: it does not run remotely")
        body: dict[str, Any] = {"select": select, "to_key_type": to_key_type, "to_ca": to_ca}
        body |= {"to_profile": to_profile} if to_profile else {}
        body |= {"revoke_old_after": revoke_old_after, "dry_run": dry_run}
        _remote_create(server, body, fmt)
        return
    request = CampaignRequest(
        Selection.parse(select),
        to_key_type=KeyType.parse(to_key_type) if to_key_type else None,
        to_ca=to_ca,
        to_profile=to_profile,
        revoke_old_after=parse_duration(revoke_old_after) if revoke_old_after is not None else None,
        generate_dir=generate_keys,
    )
    with platform(data_dir, db) as p:
        if dry_run:
            rows = [item.to_dict() for item in p.rotation.preview(request)]
            emit(rows, _DRY_RUN_COLUMNS, fmt, title="Dry run")
            return
        campaign = p.rotation.create(request, actor="cli")
        out = sys.stderr if fmt is Format.JSON else sys.stdout
        out.write(f"campaign {campaign.id}: {campaign.total} certificates\n")
        out.flush()
        if no_run:
            _print_report(p.rotation.report(campaign.id), fmt)
            return
        run_with_progress(p, campaign.id, fmt=fmt)
        if to_profile is not None:
            _remaining_exposure(p, request.selection.single("team"), out)


def _remaining_exposure(p: Platform, team: str | None, out: Any) -> None:
    """After a migration: what is still quantum-vulnerable (the crypto report's count)."""
    summary = p.crypto.report(team).summary()
    scope = f"team {team}" if team else "every team"
    out.write(
        f"remaining exposure ({scope}): {summary['quantum_vulnerable']} quantum-vulnerable of "
        f"{summary['certificates']} certificates ('certfleet crypto report' lists them)\n"
    )


def _remote_create(server: RemoteServer, body: dict[str, Any], fmt: Format) -> None:
    """Create the campaign on the server, which works it in the background (as after
    ``--no-run``): its state is printed as created."""
    answer = server.request("POST", "/api/v1/lifecycle/campaigns", json=body)
    if body["dry_run"]:
        emit(answer["items"], _DRY_RUN_COLUMNS, fmt, title="Dry run")
        return
    out = sys.stderr if fmt is Format.JSON else sys.stdout
    out.write(f"campaign {answer['id']}: {answer['progress']['total']} certificates\n")
    out.flush()
    _print_report(answer, fmt)


@app.command("resume")
def resume(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Continue a campaign where it stopped (after a crash or a kill)."""
    if remote_server() is not None:
        die("the server works its campaigns itself; 'rotate resume' runs beside the data directory")
    with platform(data_dir, db) as p:
        run_with_progress(p, campaign_id, fmt=fmt)


@app.command("status")
def status(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    items: Annotated[bool, typer.Option("--items", help="List every certificate of the campaign.")] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="First look for deployments, confirmations and due revocations.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """A campaign's progress, what each unfinished certificate waits for and since when (with
    --items, every certificate)."""
    server = remote_server()
    listed: list[dict[str, Any]] = []
    if server is not None:
        if refresh:
            die("the server refreshes its campaigns itself; --refresh runs beside the data directory")
        path = f"/api/v1/lifecycle/campaigns/{quote(campaign_id, safe='')}"
        report: CampaignReport | dict[str, Any] = server.request("GET", path)
        every = _remote_items(server, path)
        waiting = [i for i in every if i.get("waiting_for") is not None][: _WAITING_SHOWN + 1]
        listed = every if items else []
    else:
        with platform(data_dir, db) as p:
            report = p.rotation.report(campaign_id, refresh=refresh)
            campaign = report.campaign
            waiting = [i.to_dict(campaign) for i in p.rotation.waiting(campaign_id, limit=_WAITING_SHOWN + 1)]
            if items:
                after = 0
                while page := p.rotation.items(campaign_id, after_id=after, limit=1000):
                    listed += [i.to_dict(campaign) for i in page]
                    after = page[-1].certificate_id
    if fmt is Format.JSON:
        data = report if isinstance(report, dict) else report.to_dict()
        data["waiting"] = waiting[:_WAITING_SHOWN]
        if items:
            data["items"] = listed
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _print_report(report, fmt)
    if waiting and not items:
        more = " (more: --items)" if len(waiting) > _WAITING_SHOWN else ""
        emit(waiting[:_WAITING_SHOWN], _WAITING_COLUMNS, fmt, title=f"Waiting{more}")
    if items:
        emit(listed, _ITEM_COLUMNS, fmt, title="Certificates")


@app.command("list")
def list_campaigns(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """Campaigns, newest first."""
    server = remote_server()
    if server is not None:
        reports = server.request("GET", "/api/v1/lifecycle/campaigns")
        rows = [{**r, **r["progress"]} for r in reports]
    else:
        with platform(data_dir, db) as p:
            rows = [{**r.to_dict(), **r.counts.to_dict()} for r in p.rotation.list()]
    emit(rows, _LIST_COLUMNS, fmt, title="Campaigns")


def _remote_items(server: RemoteServer, path: str) -> list[dict[str, Any]]:
    """A campaign's certificates in certificate order, by the API's keyset pages."""
    return server.pages(f"{path}/items", {"limit": 1000})
