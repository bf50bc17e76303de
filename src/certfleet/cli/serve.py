from __future__ import annotations

import sys
from typing import Annotated

import typer

from certfleet.access import Scope
from certfleet.api.server import run_servers
from certfleet.cli._common import DataDirOption, DbOption, die, platform, settings_for
from certfleet.cli.init import initialize
from certfleet.config import parse_bind
from certfleet.services.server_identity import ensure_server_identity


def serve(
    https: Annotated[
        str | None, typer.Option("--https", help="HTTPS listen address (default 127.0.0.1:8443).")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="Plain HTTP listen address (default 127.0.0.1:8080).")
    ] = None,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Extra DNS name or IP for the HTTPS certificate."),
    ] = None,
    init: Annotated[
        bool, typer.Option("--init", help="On first start, create the CA and print an admin token.")
    ] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Serve the REST API over HTTPS and CA material over HTTP."""
    settings = settings_for(data_dir, db)
    https_bind = parse_bind(https) if https else settings.server.https_bind
    http_bind = parse_bind(http) if http else settings.server.http_bind
    first_start = init and not (settings.is_sqlite and settings.data_dir.database.exists())
    with platform(data_dir, db, create=init) as p:
        if init and not p.authorities.is_initialized():
            first_start = True
            initialize(p, "ec-p256", "certfleet")
        elif not p.authorities.is_initialized():
            die("no CA yet: run 'certfleet init' first (or 'certfleet serve --init')")
        admin_token = None
        if first_start:
            admin_token = p.tokens.create(
                "admin", Scope.ADMIN, [], actor="system:serve", description="first start"
            ).token
        passphrase = p.settings.passphrase_file.read_bytes().strip()
        identity = ensure_server_identity(
            p.issuance,
            p.settings.data_dir.tls,
            (*settings.server.server_names, *(server_name or [])),
            passphrase,
            p.clock,
        )

        def started() -> None:
            host = https_bind[0] if ":" not in https_bind[0] else f"[{https_bind[0]}]"
            plain = http_bind[0] if ":" not in http_bind[0] else f"[{http_bind[0]}]"
            print(
                f"certfleet API:       https://{host}:{https_bind[1]}/api/v1/ (OpenAPI: /api/v1/openapi.json)"
            )
            print(f"CA material:         http://{plain}:{http_bind[1]}/ca/root.pem")
            print(f"Root CA certificate: curl -o root.pem http://{plain}:{http_bind[1]}/ca/root.pem")
            if admin_token:
                print(f"Admin API token (shown once): {admin_token}")
            sys.stdout.flush()

        try:
            run_servers(p, identity, https_bind, http_bind, on_started=started)
        except OSError as exc:
            die(f"cannot start server: {exc}")
