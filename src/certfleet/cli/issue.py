from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from certfleet.ca import IssuanceRequest
from certfleet.cli._common import DataDirOption, DbOption, platform
from certfleet.errors import InvalidInput
from certfleet.fs import write_atomic
from certfleet.x509 import KeyType, csr_public_key, generate_private_key, load_csr, names_from_csr, to_pem


def issue(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for cert.pem, chain.pem, fullchain.pem, key.pem.")
    ],
    profile: Annotated[
        str, typer.Option("--profile", help="tls-server, tls-client or tls-server-client.")
    ] = ("tls-server"),
    cn: Annotated[
        str | None, typer.Option("--cn", help="Subject common name (must be one of the SANs).")
    ] = None,
    san: Annotated[list[str] | None, typer.Option("--san", help="DNS name or IP address; repeat.")] = None,
    days: Annotated[
        int | None, typer.Option("--days", help="Validity in days (default: the profile's).")
    ] = None,
    key_type: Annotated[str, typer.Option("--key-type", help="Key to generate when no --csr.")] = "ec-p256",
    csr: Annotated[Path | None, typer.Option("--csr", help="PEM or DER CSR; its key is certified.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Owning team in the inventory.")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Issue a certificate and write it (and a generated key, mode 0600) to --out."""
    names = list(san or [])
    private_key = None
    if csr is not None:
        try:
            raw = csr.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read CSR {csr}: {exc.strerror}") from exc
        request_csr = load_csr(raw)
        public_key = csr_public_key(request_csr)
        if not names and cn is None:
            cn, names = names_from_csr(request_csr)
    else:
        private_key = generate_private_key(KeyType.parse(key_type))
        public_key = private_key.public_key()
    request = IssuanceRequest(profile, public_key, tuple(names), cn, days)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} exists and is not a directory")
    with platform(data_dir, db) as p:
        result = p.issuance.issue(request, actor="cli", team=team, private_key=private_key)
    issued = result.issued
    out.mkdir(parents=True, exist_ok=True)
    key_pem = result.private_key_pem()
    if key_pem is not None:
        write_atomic(out / "key.pem", key_pem, mode=0o600)
    write_atomic(out / "cert.pem", to_pem([issued.certificate]).encode())
    write_atomic(out / "chain.pem", to_pem(issued.chain).encode())
    write_atomic(out / "fullchain.pem", to_pem(issued.fullchain).encode())
    Console(highlight=False, soft_wrap=True).print(
        f"Issued serial {result.record.serial} for {', '.join(result.record.sans) or result.record.subject}, "
        f"valid until {result.record.not_after:%Y-%m-%d %H:%M}Z; files in {out}"
    )
