from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, mldsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from rich.console import Console

from certfleet.ca import IssuanceRequest
from certfleet.cli._common import CreateFormatOption, DataDirOption, DbOption, Format, emit_document, platform
from certfleet.cli._remote import remote_server
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
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Issue a certificate and write it (and a generated key, mode 0600) to --out."""
    names = list(san or [])
    private_key = None
    request_csr = None
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
    server = remote_server()
    if server is not None:
        # The key stays here: the server gets a CSR signed by it (or the one given).
        csr_pem = (request_csr or _csr_for(private_key)).public_bytes(serialization.Encoding.PEM).decode()
        body = {"csr": csr_pem, "profile": profile, "sans": names, "common_name": cn, "validity_days": days}
        answer = server.request("POST", "/api/v1/certificates", json={**body, "team": team})
        record: dict[str, Any] = answer["certificate"]
        key_pem = _key_pem(private_key)
        files = (answer["certificate_pem"], answer["chain_pem"], answer["fullchain_pem"])
    else:
        with platform(data_dir, db) as p:
            result = p.issuance.issue(request, actor="cli", team=team, private_key=private_key)
            record = result.record.to_dict(p.clock.now())
        issued = result.issued
        key_pem = result.private_key_pem()
        files = (to_pem([issued.certificate]), to_pem(issued.chain), to_pem(issued.fullchain))
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str | None] = {"private_key": None}
    if key_pem is not None:
        write_atomic(out / "key.pem", key_pem, mode=0o600)
        written["private_key"] = str(out / "key.pem")
    for name, pem in zip(("certificate", "chain", "fullchain"), files, strict=True):
        path = out / _FILES[name]
        write_atomic(path, pem.encode())
        written[name] = str(path)
    if fmt is Format.JSON:
        emit_document({"certificate": record, "files": written})
        return
    until = dt.datetime.fromisoformat(record["not_after"])
    Console(emoji=False, highlight=False, soft_wrap=True).print(
        f"Issued serial {record['serial']} for {', '.join(record['sans']) or record['subject']}, "
        f"valid until {until:%Y-%m-%d %H:%M}Z; files in {out}"
    )


_FILES = {"certificate": "cert.pem", "chain": "chain.pem", "fullchain": "fullchain.pem"}
_ML_DSA = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey


def _csr_for(private_key: CertificateIssuerPrivateKeyTypes | None) -> x509.CertificateSigningRequest:
    """A CSR that proves possession of ``private_key``; the names travel in the request body
    (as the local issuance takes them), so its subject stays empty."""
    assert private_key is not None
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    # EdDSA and ML-DSA sign the message itself (RFC 8410, RFC 9881): no hash to name.
    unhashed = isinstance(private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | _ML_DSA)
    algorithm = None if unhashed else hashes.SHA256()
    return builder.sign(private_key, algorithm)


def _key_pem(private_key: CertificateIssuerPrivateKeyTypes | None) -> bytes | None:
    """The key as issuance writes it locally (unencrypted PKCS#8, written 0600)."""
    if private_key is None:
        return None
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
