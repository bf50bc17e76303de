from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, platform, stderr
from certfleet.cli._remote import remote_server
from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.revocation import RevocationReason
from certfleet.x509 import load_certificates, to_pem

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
    server = remote_server()
    if server is not None:
        body = {
            "serial": serial,
            "reason": parsed_reason.value,
            "invalidity_date": iso(when),
            "issuer_ca_id": issuer,
            "certificate_pem": to_pem([certificate]) if certificate is not None else None,
        }
        outcome: dict[str, Any] = server.request("POST", "/api/v1/revocations", json=body)
    else:
        with platform(data_dir, db) as p:
            outcome = p.revocation.revoke_serial(
                serial,
                parsed_reason,
                actor="cli",
                invalidity_date=when,
                issuer_ca_id=issuer,
                certificate=certificate,
            ).to_dict(p.clock.now())
    where = "in the inventory" if outcome["certificate"] is not None else "not in the inventory (serial only)"
    Console(emoji=False, highlight=False, soft_wrap=True).print(
        f"Revoked serial {outcome['serial']} ({outcome['reason']}) at {outcome['revoked_at']}, "
        f"issuer CA {outcome['issuer_ca_id']}; {where}",
        markup=False,
    )
    if parsed_reason is RevocationReason.KEY_COMPROMISE and not outcome["key_blocked"]:
        stderr.print(
            "warning: the certificate itself is unknown, so its key could not be blocked; "
            "give --cert FILE to block it",
            markup=False,
        )
