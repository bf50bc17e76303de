"""``certfleet acme``: external account keys and "renew now" (ARI), plus the ACME options of
``serve``."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform, stderr
from certfleet.cli._listing import listing_rows
from certfleet.cli._remote import remote_server
from certfleet.config import Settings, parse_resolver

__all__ = [
    "AcmeHttp01PortOption",
    "AcmeResolverOption",
    "AcmeTlsAlpn01PortOption",
    "app",
    "with_acme_options",
]

app = typer.Typer(
    help="The ACME server: external account keys and ARI renewal overrides.", no_args_is_help=True
)
eab_app = typer.Typer(help="External account binding keys (RFC 8555 7.3.4).", no_args_is_help=True)
app.add_typer(eab_app, name="eab")
overrides_app = typer.Typer(help="ARI windows moved by 'acme renew-now' (RFC 9773).", no_args_is_help=True)
app.add_typer(overrides_app, name="overrides")

AcmeResolverOption = Annotated[
    str | None,
    typer.Option("--acme-resolver", help="DNS server HOST:PORT for ACME validation (A/AAAA/TXT/CAA)."),
]
AcmeHttp01PortOption = Annotated[
    int | None,
    typer.Option("--acme-http01-port", min=1, max=65535, help="Port http-01 validation connects to (80)."),
]
AcmeTlsAlpn01PortOption = Annotated[
    int | None,
    typer.Option("--acme-tlsalpn01-port", min=1, max=65535, help="Port tls-alpn-01 validation uses (443)."),
]


def with_acme_options(
    settings: Settings, resolver: str | None, http01_port: int | None, tlsalpn01_port: int | None
) -> Settings:
    """Flags win over the config file's ``[acme]`` section."""
    acme = settings.acme
    if resolver is not None:
        acme = dataclasses.replace(acme, resolver=parse_resolver(resolver))
    if http01_port is not None:
        acme = dataclasses.replace(acme, http01_port=http01_port)
    if tlsalpn01_port is not None:
        acme = dataclasses.replace(acme, tlsalpn01_port=tlsalpn01_port)
    return dataclasses.replace(settings, acme=acme)


@eab_app.command("create")
def eab_create(
    team: Annotated[str, typer.Option("--team", help="Team whose name policy bound accounts issue under.")],
    allow_names: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-names", help="Name pattern bound accounts may order (*.x, **.x, CIDR); repeat."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="A note for the key list.")] = "",
    fmt: Annotated[Format, typer.Option("--format", help="table (two lines) or json.")] = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a single-use key; print its kid and base64url HMAC key (shown once)."""
    server = remote_server()
    if server is not None:
        body = {"team": team, "allow_names": allow_names or [], "description": description}
        created: dict[str, Any] = server.request("POST", "/api/v1/acme/eab-keys", json=body)
    else:
        with platform(data_dir, db) as p:
            minted = p.acme.create_eab_key(team, allow_names or [], actor="cli", description=description)
        created = {"kid": minted.record.kid, "hmac_key": minted.hmac_key_b64, "key": minted.record.to_dict()}
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(created, indent=2) + "\n")
        return
    sys.stdout.write(f"kid: {created['kid']}\nhmac_key: {created['hmac_key']}\n")


@eab_app.command("list")
def eab_list(fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """List keys (never their HMAC keys) and the account each is bound to."""
    rows = listing_rows(
        "/api/v1/acme/eab-keys", lambda p: [k.to_dict() for k in p.acme.eab_keys()], data_dir, db
    )
    emit(rows, ["kid", "team", "allow_names", "description", "created_at", "account_id"], fmt)


@eab_app.command("revoke")
def eab_revoke(
    kid: Annotated[str, typer.Argument(help="The key's kid (see 'certfleet acme eab list').")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Withdraw a key no account has used yet: nobody can bind it any more."""
    server = remote_server()
    if server is not None:
        server.request("DELETE", f"/api/v1/acme/eab-keys/{quote(kid, safe='')}")
    else:
        with platform(data_dir, db) as p:
            p.acme.revoke_eab_key(kid, actor="cli")
    typer.echo(f"external account key {kid} revoked")


@app.command("renew-now")
def renew_now(
    serials: Annotated[
        list[str] | None, typer.Argument(help="Serials (hex) of certificates to renew.")
    ] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Every certificate of this issuer.")] = None,
    san: Annotated[str | None, typer.Option("--san", help="Every certificate with this name.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Every certificate of this team.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every active certificate certfleet issued.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Move ARI renewal windows to now: ARI clients (certbot, ...) renew at their next check."""
    server = remote_server()
    if server is not None:
        body = {"serials": serials or [], "issuer": issuer, "san": san, "team": team, "all": every}
        outcomes: list[dict[str, Any]] = server.request("POST", "/api/v1/acme/renewal-overrides", json=body)
    else:
        from certfleet.inventory import CertificateQuery

        selected = any((issuer, san, team))
        query = CertificateQuery(issuer=issuer, san=san, team=team) if selected else None
        with platform(data_dir, db) as p:
            found = p.acme.renew_now_selected(serials or [], query, every=every, actor="cli")
        outcomes = [dataclasses.asdict(o) for o in found]
    console = Console(emoji=False, highlight=False)
    failures = 0
    for outcome in outcomes:
        if outcome["ok"]:
            console.print(f"{outcome['serial']}: {outcome['detail']}", markup=False)
        else:
            failures += 1
            stderr.print(f"{outcome['serial']}: {outcome['detail']}", markup=False)
    console.print(
        f"{len(outcomes) - failures} of {len(outcomes)} certificates will renew at the next ARI check"
    )
    if failures:
        raise typer.Exit(1)


@overrides_app.command("list")
def overrides_list(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """Certificates whose ARI window 'renew-now' moved, newest first."""
    rows = listing_rows(
        "/api/v1/acme/renewal-overrides",
        lambda p: [o.to_dict() for o in p.acme.renewal_overrides()],
        data_dir,
        db,
    )
    emit(rows, ["serial", "window_start", "window_end", "set_at", "actor"], fmt)


@overrides_app.command("clear")
def overrides_clear(
    serial: Annotated[str, typer.Argument(help="Serial (hex) of the certificate.")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Undo 'renew-now' for one certificate: its ARI window is the default one again."""
    server = remote_server()
    if server is not None:
        cleared: dict[str, Any] = server.request(
            "DELETE", f"/api/v1/acme/renewal-overrides/{quote(serial, safe='')}"
        )
    else:
        with platform(data_dir, db) as p:
            cleared = p.acme.clear_renewal_override(serial, actor="cli").to_dict()
    typer.echo(f"{cleared['serial']}: renewal window back to the default")
