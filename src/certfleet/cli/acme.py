"""``certfleet acme``: external account keys and "renew now" (ARI), plus the ACME options of
``serve``."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform, stderr
from certfleet.config import Settings, parse_resolver
from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateQuery

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
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a single-use key; print its kid and base64url HMAC key (shown once)."""
    with platform(data_dir, db) as p:
        minted = p.acme.create_eab_key(team, allow_names or [], actor="cli", description=description)
    sys.stdout.write(f"kid: {minted.record.kid}\nhmac_key: {minted.hmac_key_b64}\n")


@eab_app.command("list")
def eab_list(fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """List keys (never their HMAC keys) and the account each is bound to."""
    with platform(data_dir, db) as p:
        rows = [k.to_dict() for k in p.acme.eab_keys()]
    emit(rows, ["kid", "team", "allow_names", "description", "created_at", "account_id"], fmt)


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
    selector = issuer is not None or san is not None or team is not None
    if not serials and not selector and not every:
        raise InvalidInput("give serials, a selector (--issuer, --san, --team) or --all")
    if serials and (selector or every):
        raise InvalidInput("give either serials or a selector, not both")
    with platform(data_dir, db) as p:
        if serials:
            outcomes = p.acme.renew_now(serials, actor="cli")
        else:
            query = CertificateQuery(issuer=issuer, san=san, team=team)
            outcomes = p.acme.renew_now_matching(query, actor="cli")
    console = Console(highlight=False)
    failures = 0
    for outcome in outcomes:
        if outcome.ok:
            console.print(f"{outcome.serial}: {outcome.detail}", markup=False)
        else:
            failures += 1
            stderr.print(f"{outcome.serial}: {outcome.detail}", markup=False)
    console.print(
        f"{len(outcomes) - failures} of {len(outcomes)} certificates will renew at the next ARI check"
    )
    if failures:
        raise typer.Exit(1)
