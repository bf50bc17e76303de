from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, die, platform, stderr
from certfleet.cli._remote import remote_server
from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.revocation import RevocationReason
from certfleet.x509 import load_certificates

_REASONS = ", ".join(r.value for r in RevocationReason)


def _invalidity(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"bad --invalidity-date {value!r}: expected ISO 8601, e.g. 2026-01-31T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput("--invalidity-date needs a time zone (e.g. a trailing Z)")
    return parsed


def revoke(
    serial: Annotated[str, typer.Argument(help="Serial number in hex (colons allowed).")],
    reason: Annotated[str, typer.Option("--reason", help=f"One of: {_REASONS}.")] = "unspecified",
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert", help="The certificate (PEM or DER): revokes it even if the inventory lost it."
        ),
    ] = None,
    invalidity_date: Annotated[
        str | None, typer.Option("--invalidity-date", help="When the key was compromised (ISO 8601).")
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="CA id, to name the issuer of a serial explicitly.")
    ] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a certificate: the CRL and the OCSP responder show it at once."""
    parsed_reason = RevocationReason.parse(reason)  # refuse a bad reason before opening anything
    when = _invalidity(invalidity_date)
    server = remote_server()
    if server is not None:
        if cert is not None or issuer is not None:
            # Revoking what the inventory lost names the issuer or the certificate itself; the
            # API revokes inventory certificates (with the token's scope and name rules).
            die(
                "--cert and --issuer revoke a certificate the inventory lost: "
                "run them beside the data directory"
            )
        record = server.request(
            "POST",
            f"/api/v1/certificates/{quote(serial.strip(), safe='')}/revoke",
            json={"reason": parsed_reason.value, "invalidity_date": iso(when)},
        )
        Console(highlight=False, soft_wrap=True).print(
            f"Revoked serial {record['serial']} ({record['revocation_reason']}) at {record['revoked_at']}, "
            f"issuer CA {record['issuer_ca_id']}; in the inventory",
            markup=False,
        )
        return
    certificate = None
    if cert is not None:
        try:
            raw = cert.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {cert}: {exc.strerror}") from exc
        certificates = load_certificates(raw, source=str(cert))
        if len(certificates) != 1:
            raise InvalidInput(f"{cert} holds {len(certificates)} certificates; give exactly one")
        certificate = certificates[0]
    with platform(data_dir, db) as p:
        outcome = p.revocation.revoke_serial(
            serial,
            parsed_reason,
            actor="cli",
            invalidity_date=when,
            issuer_ca_id=issuer,
            certificate=certificate,
        )
    where = "in the inventory" if outcome.record is not None else "not in the inventory (serial only)"
    Console(highlight=False, soft_wrap=True).print(
        f"Revoked serial {outcome.serial} ({outcome.reason.value}) at {iso(outcome.revoked_at)}, "
        f"issuer CA {outcome.issuer_ca_id}; {where}",
        markup=False,
    )
    if parsed_reason is RevocationReason.KEY_COMPROMISE and not outcome.key_blocked:
        stderr.print(
            "warning: the certificate itself is unknown, so its key could not be blocked; "
            "give --cert FILE to block it",
            markup=False,
        )
