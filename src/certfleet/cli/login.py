"""``certfleet login``, ``logout`` and ``status``: point the CLI at a remote server (see
:mod:`certfleet.cli._remote`), forget it, and show where commands go and as whom."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, emit, settings_for
from certfleet.cli._login_store import ROOT_FILE, config_dir, forget_login, save_login
from certfleet.cli._remote import (
    CA_FILE_ENV,
    SERVER_ENV,
    TOKEN_ENV,
    RemoteServer,
    fetch_bundle,
    normalize_url,
    remote_server,
)

__all__ = ["login", "logout", "status"]

WHOAMI_PATH = "/api/v1/whoami"
_MAX_TOKEN_FILE_BYTES = 4096


def _read_token(token_file: Path | None) -> str:
    """The token from ``token_file`` (``-``: standard input), else asked for without echo."""
    if token_file is None:
        raw = str(typer.prompt("API token", hide_input=True, default="", show_default=False))
    elif str(token_file) == "-":
        raw = sys.stdin.read(_MAX_TOKEN_FILE_BYTES + 1)
    else:
        try:
            with token_file.open() as fh:
                raw = fh.read(_MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            die(f"cannot read --token-file {token_file}: {exc.strerror}")
    token = raw.strip()
    if len(raw) > _MAX_TOKEN_FILE_BYTES or any(c.isspace() for c in token):
        die("the token file must hold one API token (cf_...) and nothing else")
    if not token:
        die("no token given: paste one at the prompt, or give --token-file FILE")
    return token


def login(
    url: Annotated[
        str, typer.Argument(help="The server's API URL, e.g. https://certfleet.example.com:8443.")
    ],
    ca_fingerprint: Annotated[
        str,
        typer.Option(
            "--ca-fingerprint",
            help="SHA-256 of the server's root CA (as 'serve' prints it or 'openssl x509 -fingerprint "
            "-sha256' shows it): the root is pinned only if it matches.",
        ),
    ],
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="File holding the API token ('-': standard input); else a prompt."),
    ] = None,
) -> None:
    """Log in to a remote certfleet server: pin its root, check the token, save both."""
    from certfleet.agent.enrollment import parse_fingerprint
    from certfleet.x509 import to_pem

    server_url = normalize_url(url)
    pin = parse_fingerprint(ca_fingerprint)
    # The bundle is read before the token is asked for, and the token is sent only over TLS
    # verified through the pinned root's server-identity CA (as an agent's enrolment).
    bundle = fetch_bundle(server_url, pin)
    if not bundle.server_cas:
        die(
            f"the server {server_url} offers no server-identity CA signed by the pinned root: "
            "upgrade the certfleet server (serve creates that CA at start-up)"
        )
    token = _read_token(token_file)
    target = config_dir() / ROOT_FILE
    server = RemoteServer(server_url, token, target)
    server._session["server_cas"] = bundle.server_cas  # learned just now, from the pinned root
    try:
        caller = server.request("GET", WHOAMI_PATH)  # a refused token ends here, nothing saved
    finally:
        server.close()
    directory = save_login(server_url, token, to_pem([bundle.root, *bundle.intermediates]).encode())
    typer.echo(f"Logged in to {server_url} as {_who(caller)}; saved in {directory}")


def logout() -> None:
    """Forget the saved login (URL, pinned root and token)."""
    url = forget_login()
    directory = config_dir()
    if url is None:
        typer.echo(f"not logged in (nothing saved in {directory})")
    else:
        typer.echo(f"Logged out of {url}; removed the login from {directory}")
    if os.environ.get(SERVER_ENV, "").strip():
        typer.echo(f"note: {SERVER_ENV} is still set, so commands still go to {os.environ[SERVER_ENV]}")


def _who(caller: dict[str, Any]) -> str:
    names = ", ".join(caller.get("allow_names") or [])
    team = caller.get("team") or "no team"
    return f"{caller.get('name')} (team {team}, scope {caller.get('scope')}" + (
        f", names {names})" if names else ")"
    )


_STATUS_COLUMNS = ["mode", "server", "configured_by", "ca_file", "name", "team", "scope", "allow_names"]


def status(
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Where commands go (a remote server, or the local data directory) and as whom."""
    server = remote_server()
    if server is None:
        settings = settings_for(data_dir, db)
        row: dict[str, Any] = {
            "mode": "local",
            "data_dir": str(settings.data_dir.root),
            "database": _redacted(settings.database_url),
        }
        _show(row, ["mode", "data_dir", "database"], fmt)
        return
    try:
        caller = server.request("GET", WHOAMI_PATH)
    finally:
        server.close()
    overridden = [name for name in (SERVER_ENV, TOKEN_ENV, CA_FILE_ENV) if os.environ.get(name, "").strip()]
    row = {
        "mode": "remote",
        "server": server.url,
        "configured_by": ", ".join(overridden) if overridden else f"certfleet login ({config_dir()})",
        "ca_file": str(server.ca_file),
        "name": caller.get("name"),
        "team": caller.get("team"),
        "scope": caller.get("scope"),
        "allow_names": list(caller.get("allow_names") or []),
    }
    _show(row, _STATUS_COLUMNS, fmt)


def _redacted(url: str) -> str:
    """A database URL without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _show(row: dict[str, Any], columns: list[str], fmt: Format) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(row, indent=2) + "\n")
    elif fmt is Format.CSV:
        emit([row], columns, fmt)
    else:
        for column in columns:
            value = row.get(column)
            shown = ", ".join(value) if isinstance(value, list) else ("" if value is None else str(value))
            sys.stdout.write(f"{column:>13}: {shown}\n")
