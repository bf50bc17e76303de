from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from certfleet.app import Platform
from certfleet.cli._common import DataDirOption, DbOption, platform
from certfleet.cli._remote import local_only
from certfleet.x509 import KeyType


def initialize(p: Platform, key_type: str, ca_name: str) -> None:
    root, inter = p.authorities.initialize(ca_name, KeyType.parse(key_type), actor="cli")
    console = Console(emoji=False, highlight=False, soft_wrap=True)
    console.print(f"Data directory: {p.settings.data_dir.root}")
    console.print(f"Root CA:        {root.name} ({root.id}), valid until {root.not_after:%Y-%m-%d}")
    console.print(f"Issuing CA:     {inter.name} ({inter.id}), valid until {inter.not_after:%Y-%m-%d}")


def init(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    key_type: Annotated[
        str, typer.Option("--key-type", help="ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519.")
    ] = "ec-p256",
    ca_name: Annotated[
        str, typer.Option("--ca-name", help="Name of the CA (its subject O and CN).")
    ] = "certfleet",
) -> None:
    """Create the data directory, database and a root plus issuing CA."""
    local_only("init")
    KeyType.parse(key_type)  # refuse a bad key type before touching anything
    with platform(data_dir, db, create=True) as p:
        initialize(p, key_type, ca_name)
