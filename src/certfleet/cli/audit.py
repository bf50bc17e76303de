from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from certfleet.audit import Checkpoint, checkpoint_key_id, public_key_text
from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, emit, platform, stderr
from certfleet.cli._remote import local_only, remote_server
from certfleet.errors import IntegrityError

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
PAGE_SIZE = 1000  # entries per request to a server: its largest page (api.audit.AUDIT_PAGE_SIZE)
stdout = Console(emoji=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_entries(
    serial: Annotated[
        str | None,
        typer.Option("--serial", help="Only entries about certificates with this serial (hex)."),
    ] = None,
    issuer: Annotated[
        str | None,
        typer.Option(
            "--issuer",
            help="Only entries about certificates of this issuer: a CA id (ca list) or the issuer "
            "name as RFC 4514, e.g. 'CN=Example Issuing CA 1,O=Example'.",
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List audit entries, oldest first. An entry about a certificate has the subject
    ``cert:<serial>@<issuer name>``."""
    server = remote_server()
    if server is not None:
        rows: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:  # keyset pages, oldest first
            page = server.request(
                "GET",
                "/api/v1/audit",
                params={"serial": serial, "issuer": issuer, "after": after, "limit": PAGE_SIZE},
            )
            rows += page["items"]
            after = page["next_after"]
    else:
        with platform(data_dir, db) as p:
            rows = [e.to_dict() for e in p.audit.entries(serial=serial, issuer=issuer)]
    if fmt is Format.TABLE:
        for row in rows:
            row["hash"] = row["hash"][:16]
    emit(rows, ["seq", "at", "actor", "action", "subject", "details", "hash"], fmt)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        die(f"cannot read checkpoint file {path}: {exc.strerror or exc}")


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Also check the signed checkpoints in FILE: each checkpointed entry must still "
            "be in the chain, unchanged (detects a wiped or wholly rewritten log).",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="The checkpoint key's public key (base64, as 'audit checkpoint' prints it); "
            "default: the data directory's checkpoint key.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Check the hash chain (and with --checkpoint the signed checkpoints); exit 1 with one
    line naming the first problem."""
    lines = _read_lines(checkpoint) if checkpoint is not None else None
    server = remote_server()
    if server is not None:
        body = {"checkpoint_lines": lines, "public_key": public_key}
        verdict: dict[str, Any] = server.request("POST", "/api/v1/audit/verify", json=body)
    else:
        with platform(data_dir, db) as p:
            verdict = p.audit.check(lines, public_key).to_dict()
    if verdict["reason"] is not None:
        stderr.print(
            f"audit log FAILED verification at entry {verdict['first_bad_seq']}: {verdict['reason']}",
            markup=False,
        )
        raise typer.Exit(1)
    if verdict["checkpoints"] is None:
        stdout.print(f"audit log OK: {verdict['entries']} entries, chain intact")
        return
    if verdict["checkpoint_reason"] is not None:
        where = f"checkpoint file {checkpoint}" if verdict["checkpoint_line"] is not None else "audit log"
        stderr.print(f"{where} FAILED checkpoint verification: {verdict['checkpoint_reason']}", markup=False)
        raise typer.Exit(1)
    stdout.print(
        f"audit log OK: {verdict['entries']} entries, chain intact, "
        f"consistent with {verdict['checkpoints']} signed checkpoints"
    )


def _append(path: Path, line: str) -> None:
    """Append one line; the file is public (0644): it holds hashes and signatures only."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class _RaisingSysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        raise  # a checkpoint that did not leave must fail the command, not print a traceback


def _syslog_address(address: str) -> str | tuple[str, int]:
    """A socket path (``/dev/log``) or ``HOST:PORT`` (UDP)."""
    if address.startswith("/"):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        die(f"bad syslog address {address!r}: expected a socket path or HOST:PORT")
    return host.strip("[]"), int(port)


def _send_syslog(address: str, line: str) -> None:
    target = _syslog_address(address)
    try:
        handler = _RaisingSysLogHandler(
            address=target,
            facility=logging.handlers.SysLogHandler.LOG_AUTH,
            socktype=socket.SOCK_DGRAM if isinstance(target, tuple) else None,
        )
    except OSError as exc:
        die(f"cannot reach syslog at {address}: {exc.strerror or exc}")
    handler.ident = "certfleet-audit-checkpoint: "
    logger = logging.Logger("certfleet.audit.checkpoint")  # private: not the root's handlers
    logger.addHandler(handler)
    try:
        logger.info(line)
    except OSError as exc:
        die(f"cannot send to syslog at {address}: {exc.strerror or exc}")
    finally:
        handler.close()


@app.command("checkpoint")
def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Append the signed checkpoint line to FILE.", show_default=False),
    ] = None,
    syslog: Annotated[
        bool, typer.Option("--syslog", help="Send the signed checkpoint line to syslog.")
    ] = False,
    syslog_address: Annotated[
        str, typer.Option("--syslog-address", help="Syslog socket path, or HOST:PORT for UDP.")
    ] = "/dev/log",
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Sign the log's head (entry number, hash, time) with the checkpoint key, which lives
    in the data directory, not the database, and print it, append it to --out FILE or send it
    to syslog. Keep the lines (and the public key) away from this machine: 'audit verify
    --checkpoint FILE' then detects a wiped or rewritten log."""
    local_only("audit checkpoint")  # the checkpoint key lives in the data directory, not the database
    if out is not None and syslog:
        die("choose one of --out and --syslog")
    with platform(data_dir, db) as p:
        try:
            signed: Checkpoint = p.audit.checkpoint()
        except IntegrityError as exc:
            stderr.print(exc.detail, markup=False)
            raise typer.Exit(1) from exc
        public = p.audit.checkpoint_key().public_key()
    line = signed.to_line()
    key = f"checkpoint key {checkpoint_key_id(public)}: Ed25519 public key {public_key_text(public)}"
    if out is None and not syslog:
        print(line)
        stderr.print(key, markup=False)
        return
    if out is not None:
        try:
            _append(out, line)
        except OSError as exc:
            die(f"cannot append to {out}: {exc.strerror or exc}")
        where = f"appended to {out}"
    else:
        _send_syslog(syslog_address, line)
        where = f"sent to syslog at {syslog_address}"
    stdout.print(f"checkpoint of entry {signed.seq} (hash {signed.hash}) {where}")
    stdout.print(key)
