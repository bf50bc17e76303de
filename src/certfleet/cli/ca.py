from __future__ import annotations

import sys

import typer
from cryptography.hazmat.primitives import serialization

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform
from certfleet.cli.ca_rotation import compromise, rotate
from certfleet.clock import iso
from certfleet.x509 import describe_public_key

app = typer.Typer(help="The CA hierarchy.", no_args_is_help=True)


@app.command("list")
def list_cas(data_dir: DataDirOption = None, db: DbOption = None, fmt: FormatOption = Format.TABLE) -> None:
    """Show the hierarchy with validity."""
    with platform(data_dir, db) as p:
        rows = [
            {
                "id": ca.id,
                "role": ca.role,
                "name": ca.name,
                "parent": ca.parent_id,
                "subject": ca.certificate.subject.rfc4514_string(),
                "key": describe_public_key(ca.certificate.public_key()).label,
                "not_before": iso(ca.not_before),
                "not_after": iso(ca.not_after),
                "active": ca.active,
            }
            for ca in p.authorities.hierarchy()
        ]
    emit(rows, ["id", "role", "name", "parent", "key", "not_before", "not_after", "active"], fmt, title="CAs")


@app.command("root")
def root(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Print the root certificate as PEM."""
    with platform(data_dir, db) as p:
        pem = p.authorities.root().certificate.public_bytes(serialization.Encoding.PEM)
    sys.stdout.write(pem.decode())


app.command("rotate")(rotate)
app.command("compromise")(compromise)
