"""``certfleet notify``: channels per team, a test send, deliveries, and one dispatch pass.
With a server configured (``certfleet login``) the channel commands, the test send and the
deliveries go to ``/api/v1/notifications`` and print the same; the dispatch pass runs beside
the data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote  # an id is one path segment: "/" or "?" must not change the route

import typer
from rich.console import Console

from certfleet.cli._common import (
    CreateFormatOption,
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    emit,
    emit_document,
    platform,
    stderr,
)
from certfleet.cli._listing import listing_rows
from certfleet.cli._remote import local_only, remote_server
from certfleet.errors import InvalidInput
from certfleet.lifecycle.notifications import available
from certfleet.services.notifications import listed

app = typer.Typer(help="Notifications: where events go, and what was delivered.", no_args_is_help=True)
channel_app = typer.Typer(help="Notification channels, configured per team.", no_args_is_help=True)
app.add_typer(channel_app, name="channel")

_CHANNEL_COLUMNS = ["id", "name", "team", "type", "target", "events", "digest", "secret"]
_DELIVERY_COLUMNS = [
    "id",
    "event_id",
    "event",
    "subject",
    "channel",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
]


def _secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read secret file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    return text.strip("\r\n")


_CHANNELS = "/api/v1/notifications/channels"


def _ca_file(path: Path, *, remote: bool) -> Path:
    """The server reads the SMTP server's CA file when it sends: a remote one must be named
    by its absolute path on the server."""
    if not remote:
        return path.resolve()
    if not path.is_absolute():
        raise InvalidInput("--ca-file names a file on the server: give its absolute path")
    return path


@channel_app.command("add")
def add(
    type_name: Annotated[str, typer.Option("--type", help="webhook, email or slack.")],
    team: Annotated[
        str | None, typer.Option("--team", help="Team whose events it receives (default: every team).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Webhook or Slack URL; smtp://[user@]host[:port] for email.")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option("--secret-file", help="Webhook HMAC key, or the SMTP password.")
    ] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Email recipient; repeat.")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Email sender address.")] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificates to trust for the SMTP server.")
    ] = None,
    event: Annotated[
        list[str] | None, typer.Option("--event", help="Only these event kinds; repeat (default: all).")
    ] = None,
    digest: Annotated[
        bool, typer.Option("--digest", help="Send expiring notices as one daily digest.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="A label for listings.")] = None,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Add a channel."""
    server = remote_server()
    options: dict[str, Any] = {}
    if url is not None:
        options["url"] = url
    if type_name == "email":
        options.update({"to": list(to or []), "from": sender})
        if ca_file is not None:
            options["ca_file"] = str(_ca_file(ca_file, remote=server is not None))
    elif to or sender or ca_file:
        raise InvalidInput("--to, --from and --ca-file are for email channels")
    secret = _secret(secret_file)
    if server is not None:
        body = {
            "type": type_name,
            "team": team,
            "options": options,
            "secret": secret,
            "name": name,
            "events": list(event or ()),
            "digest": digest,
        }
        added: dict[str, Any] = server.request("POST", _CHANNELS, json=body)
    else:
        with platform(data_dir, db) as p:
            channel = p.notifications.add_channel(
                type_name=type_name,
                options=options,
                team=team,
                actor="cli",
                secret=secret,
                name=name,
                events=tuple(event or ()),
                digest=digest,
            )
        added = listed(channel)  # as POST /api/v1/notifications/channels answers
    if fmt is Format.JSON:
        emit_document(added)
        return
    Console(emoji=False, highlight=False).print(
        f"Added {added['type']} channel {added['id']} for {added['team'] or 'every team'}", markup=False
    )


@channel_app.command("list")
def list_channels(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's channels.")] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List channels (secrets are never shown)."""
    rows = listing_rows(
        _CHANNELS, lambda p: p.notifications.channel_listing(team), data_dir, db, params={"team": team}
    )
    emit(rows, _CHANNEL_COLUMNS, fmt, title=f"{len(rows)} channels; types: {', '.join(available())}")


@channel_app.command("remove")
def remove(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Remove a channel and its undelivered notices."""
    server = remote_server()
    if server is not None:
        server.request("DELETE", f"{_CHANNELS}/{quote(channel_id, safe='')}")
    else:
        with platform(data_dir, db) as p:
            p.notifications.remove_channel(channel_id, actor="cli")
    Console(emoji=False, highlight=False).print(f"Removed channel {channel_id}", markup=False)


@app.command("test")
def test(
    channel_id: Annotated[str, typer.Argument(help="Channel id (see 'notify channel list').")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Send a test notice now and report what the receiver answered (exit 1 on failure)."""
    server = remote_server()
    if server is not None:
        outcome: dict[str, Any] = server.request("POST", f"{_CHANNELS}/{quote(channel_id, safe='')}/test")
    else:
        with platform(data_dir, db) as p:
            outcome = p.notifications.test_channel(channel_id).to_dict()
    if not outcome["ok"]:
        stderr.print(f"error: test delivery failed: {outcome['detail']}", markup=False)
        raise typer.Exit(1)
    Console(emoji=False, highlight=False).print(f"Delivered: {outcome['detail']}", markup=False)


@app.command("deliveries")
def deliveries(
    state: Annotated[
        str | None, typer.Option("--state", help="pending, delivered, failed, held or digested.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Newest N.")] = 100,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List the newest deliveries and their state."""
    params = {"state": state, "limit": limit}
    rows = listing_rows(
        "/api/v1/notifications/deliveries",
        lambda p: [d.to_dict() for d in p.notifications.deliveries(state, limit)],
        data_dir,
        db,
        params=params,
    )
    emit(rows, _DELIVERY_COLUMNS, fmt, title=f"{len(rows)} deliveries")


@app.command("dispatch")
def dispatch(
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Run the expiry scan and one dispatch pass now (what 'serve' does in the background)."""
    local_only("notify dispatch")
    with platform(data_dir, db) as p:
        expiring = p.notifications.expiring_scan()
        report = p.notifications.dispatch_once()
    data = {"expiring_notices": expiring, **report.to_dict()}
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    Console(emoji=False, highlight=False).print(
        f"{expiring} new expiring notices; {report.routed} events routed, {report.delivered} delivered, "
        f"{report.retried} to retry, {report.failed} failed",
        markup=False,
    )
    for error in report.errors:
        stderr.print(f"warning: {error}", markup=False)
