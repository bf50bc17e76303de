from __future__ import annotations

import json
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, emit, platform
from certfleet.cli._remote import remote_server
from certfleet.cli.ca_rotation import compromise, rotate

app = typer.Typer(help="The CA hierarchy.", no_args_is_help=True)

_COLUMNS = ["id", "role", "name", "parent", "key", "not_before", "not_after", "active"]
# services.ca_listing.CA_COLUMNS, repeated so `ca list` against a server imports no service


def _rows(data_dir: Any, db: Any) -> list[dict[str, Any]]:
    """The hierarchy's rows, from the server (GET /api/v1/cas) or the data directory."""
    server = remote_server()
    if server is not None:
        rows: list[dict[str, Any]] = server.request("GET", "/api/v1/cas")
        return rows
    from certfleet.services.ca_listing import ca_rows

    with platform(data_dir, db) as p:
        return ca_rows(p.authorities)


def _detail(ca_id: str, data_dir: Any, db: Any) -> dict[str, Any]:
    server = remote_server()
    if server is not None:
        detail: dict[str, Any] = server.request("GET", f"/api/v1/cas/{quote(ca_id, safe='')}")
        return detail
    from certfleet.services.ca_listing import ca_detail

    with platform(data_dir, db) as p:
        return ca_detail(p.authorities, ca_id)


@app.command("list")
def list_cas(data_dir: DataDirOption = None, db: DbOption = None, fmt: FormatOption = Format.TABLE) -> None:
    """Show the hierarchy with validity."""
    emit(_rows(data_dir, db), _COLUMNS, fmt, title="CAs")


@app.command("show")
def show(
    ca_id: Annotated[str, typer.Argument(help="The CA's id (see 'certfleet ca list').")],
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Show one CA: validity, serial, fingerprint and (with --format json) its certificate."""
    data = _detail(ca_id, data_dir, db)
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if fmt is Format.CSV:
        emit([data], [k for k in data if k != "certificate_pem"], fmt)
        return
    for field, value in data.items():
        if field != "certificate_pem":
            typer.echo(f"{field:>20}: {'' if value is None else value}")


@app.command("root")
def root(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="The root HTTPS clients, agents and 'certfleet login' pin (over an ML-DSA default "
            "root: the classic TLS root; otherwise the same root).",
        ),
    ] = False,
) -> None:
    """Print the root certificate as PEM."""
    server = remote_server()
    if server is None:
        from certfleet.x509 import to_pem

        with platform(data_dir, db) as p:
            chosen = (p.authorities.tls_root() if tls else None) or p.authorities.root()
            sys.stdout.write(to_pem([chosen.certificate]))
        return
    from certfleet.ca import LISTENER_ROOT_ROLE

    cas = [r for r in server.request("GET", "/api/v1/cas") if r["active"]]
    tls_roots = [r for r in cas if r["role"] == LISTENER_ROOT_ROLE] if tls else []
    roots = tls_roots or [r for r in cas if r["role"] == "root"]
    if not roots:
        die("no CA yet: run 'certfleet init' first")
    sys.stdout.write(
        server.request("GET", f"/api/v1/cas/{quote(roots[0]['id'], safe='')}")["certificate_pem"]
    )


app.command("rotate")(rotate)
app.command("compromise")(compromise)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="The new hierarchy's name (its root's organisation).")],
    key_type: Annotated[
        str,
        typer.Option("--key-type", help="ec-p256, ec-p384, rsa-2048/3072/4096, ed25519, ml-dsa-44/65/87."),
    ] = "ml-dsa-65",
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a second, parallel hierarchy (its own root and issuing CA) beside the existing
    one: classic and post-quantum chains coexist during a migration. Profiles choose it by
    name or key type (internal-mtls-pq takes the ML-DSA-65 one)."""
    server = remote_server()
    if server is not None:
        rows: list[dict[str, Any]] = server.request(
            "POST", "/api/v1/cas", json={"name": name, "key_type": key_type}
        )
    else:
        from certfleet.services.ca_listing import ca_row
        from certfleet.x509 import KeyType

        parsed = KeyType.parse(key_type)  # refuse a bad key type before touching anything
        with platform(data_dir, db) as p:
            rows = [ca_row(ca) for ca in p.authorities.create_hierarchy(name, parsed, actor="cli")]
    emit(rows, _COLUMNS, fmt, title="CAs created")
