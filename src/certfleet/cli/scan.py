"""``certfleet scan net|files``: discover certificates, judge them, record them.

Exit status: 0 when the scan ran (whatever the targets answered), 1 when ``--fail-on``
matched a finding at or above that severity, 2 for bad input.
"""

from __future__ import annotations

import resource
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from certfleet.cli._common import (
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    TakesText,
    converted,
    die,
    require_initialized,
    settings_for,
)
from certfleet.cli._remote import remote_server
from certfleet.cli._scan_child import ChildScan
from certfleet.cli._scan_output import finish_scan
from certfleet.cli._scan_progress import progress_bar, wants_progress
from certfleet.discovery import (
    DEFAULT_MAX_FILE_SIZE,
    NetScanOptions,
    Severity,
    expand_endpoints,
    parse_ports,
    read_targets,
)
from certfleet.errors import InvalidInput

if TYPE_CHECKING:
    from types import FrameType

    from cryptography import x509

    from certfleet.app import DiscoveryRuntime
    from certfleet.discovery.requests import NetScanRequest, ScanReport

# Rich (about 65 ms to import) only draws the progress bar and the tables: a scan piped into
# a file or run with --format json|csv never imports it. Options are converted by the
# commands (TakesText): typer's checks would import pydantic. ``scan net`` starts its
# handshakes in a child interpreter (cli._scan_child) before this process imports the store
# and opens the database, so certfleet.app is imported only once the child runs.

app = typer.Typer(help="Discover certificates on networks and filesystems.", no_args_is_help=True)

FailOnOption = Annotated[
    str | None,
    typer.Option("--fail-on", help="Exit 1 when a finding at or above this severity is found."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
ExpiringOption = Annotated[
    int, typer.Option("--expiring-days", help="Flag certificates expiring within DAYS.")
]
TrustOption = Annotated[
    list[Path] | None,
    typer.Option("--trust", help="PEM file of extra trusted CAs (besides the system store and certfleet's)."),
]
TeamOption = Annotated[
    str | None, typer.Option("--team", help="Owning team of new certificates and findings.")
]


def _execute(
    data_dir: Path | None, db: str | None, scan: Callable[[DiscoveryRuntime], ScanReport]
) -> ScanReport:
    # Only the discovery service: a scan's start-up is part of what a user waits for.
    from certfleet.app import open_discovery

    settings = settings_for(data_dir, db)
    require_initialized(settings)
    p = open_discovery(settings)
    try:
        return scan(p)
    finally:
        p.close()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends a scan as Ctrl-C does: the child scanner stopped and reaped, the run
    marked failed ('interrupted'), nothing of its results written; exit 143."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a scan run from a worker thread)
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _read_trust(files: list[Path] | None) -> list[tuple[Path, bytes]]:
    read: list[tuple[Path, bytes]] = []
    for path in files or []:
        try:
            read.append((path, path.read_bytes()))
        except OSError as exc:
            raise InvalidInput(f"cannot read --trust file {path}: {exc.strerror}") from None
    return read


def _parse_trust(read: list[tuple[Path, bytes]]) -> tuple[x509.Certificate, ...]:
    from certfleet.discovery.requests import parse_trust_bundle

    anchors: list[x509.Certificate] = []
    for path, data in read:
        anchors.extend(parse_trust_bundle(data, str(path)))
    return tuple(anchors)


def _shared(expiring_days: int, trust: list[Path] | None, team: str | None) -> dict[str, object]:
    """The request fields both kinds of remote scan send (the trust files' PEM inline)."""
    pem = "".join(path.read_text() for path in trust or []) or None  # readable: _trust read them
    return {"expiring_days": expiring_days, "trust_pem": pem, "team": team}


def _common_options(expiring_days: object, trust: object) -> tuple[int, list[Path] | None]:
    """``--expiring-days`` and ``--trust`` as both scans take them (TakesText)."""
    days = converted(expiring_days, int, "--expiring-days")
    files = [Path(p) for p in trust] if isinstance(trust, list | tuple) and trust else None
    return days, files


def _raise_fd_limit(wanted: int) -> None:
    """Each connection in flight is a descriptor: lift the soft limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@app.command("net", cls=TakesText)
def scan_net(
    targets: Annotated[list[str], typer.Argument(help="Host, IP, CIDR, host:port, or @file (one per line).")],
    ports: Annotated[str, typer.Option("--ports", help="Comma-separated ports or ranges.")] = "443",
    sni: Annotated[list[str] | None, typer.Option("--sni", help="Server name to send; repeat.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Connections in flight at most.")] = 500,
    per_host: Annotated[int, typer.Option("--per-host", help="Connections to one host at most.")] = 32,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per connection: connect and handshake.")
    ] = 5.0,
    http_checks: Annotated[
        bool, typer.Option("--http-checks", help="Also check HSTS and the plain-HTTP redirect.")
    ] = False,
    http_port: Annotated[int, typer.Option("--http-port", help="Plain-HTTP port for --http-checks.")] = 80,
    expiring_days: ExpiringOption = 30,
    trust: TrustOption = None,
    team: TeamOption = None,
    fmt: FormatOption = Format.TABLE,
    fail_on: FailOnOption = None,
    quiet: QuietOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Scan TLS endpoints and record every certificate they present."""
    # Values as click read them (TakesText): converted here.
    concurrency = converted(concurrency, int, "--concurrency")
    per_host = converted(per_host, int, "--per-host")
    timeout = converted(timeout, float, "--timeout")
    http_port = converted(http_port, int, "--http-port")
    expiring_days, trust = _common_options(expiring_days, trust)
    fmt, data_dir = converted(fmt, Format, "--format"), converted(data_dir, Path, "--data-dir")
    targets, sni = list(targets), list(sni) if sni else None
    threshold = Severity.parse(fail_on) if fail_on else None
    options = NetScanOptions(
        timeout_seconds=timeout,
        concurrency=concurrency,
        per_host=per_host,
        http_checks=http_checks,
        http_port=http_port,
    )
    port_list = parse_ports(ports)
    trust_read = _read_trust(trust)
    # Bad targets are refused before anything starts (the request reads them again).
    endpoints = expand_endpoints(read_targets(targets), port_list, tuple(sni or ()))
    server = remote_server()
    if server is None:
        _raise_fd_limit(min(concurrency, len(endpoints)) * 2 + 256)  # inherited by the child
        label = "endpoints" if wants_progress(quiet) else None
        # The handshakes start now; this process meanwhile reads the trust files, imports
        # the store and opens the database (cli._scan_child).
        with _sigterm_interrupts(), ChildScan.start(endpoints, options, progress=label) as child:
            request = _net_request(targets, port_list, sni, options, expiring_days, trust_read, team)
            report = _execute(
                data_dir,
                db,
                lambda p: p.discovery.scan_network(request, actor="cli", scanner=child.run),
            )
        finish_scan(report, fmt, threshold)
        return
    from certfleet.cli._scan_remote import expand_target_files, run_remote_scan

    _parse_trust(trust_read)  # refused here rather than by the server
    body = {
        "kind": "net",
        "targets": expand_target_files(targets),
        "ports": list(port_list),
        "sni": list(sni or ()),
        "timeout_seconds": timeout,
        "concurrency": concurrency,
        "per_host": per_host,
        "http_checks": http_checks,
        "http_port": http_port,
    }
    run_remote_scan(server, {**body, **_shared(expiring_days, trust, team)}, fmt, threshold)


def _net_request(
    targets: list[str],
    ports: tuple[int, ...],
    sni: list[str] | None,
    options: NetScanOptions,
    expiring_days: int,
    trust_read: list[tuple[Path, bytes]],
    team: str | None,
) -> NetScanRequest:
    from certfleet.discovery.requests import NetScanRequest

    return NetScanRequest(
        targets=tuple(targets),
        ports=ports,
        snis=tuple(sni or ()),
        options=options,
        expiring_days=expiring_days,
        trust=_parse_trust(trust_read),
        team=team,
    )


@app.command("files", cls=TakesText)
def scan_files(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories to search.")] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Passwords to try on PKCS#12 and keystores, one per line."),
    ] = None,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symlinks met while walking.")
    ] = False,
    max_file_size: Annotated[
        int, typer.Option("--max-file-size", help="Skip files larger than BYTES.")
    ] = DEFAULT_MAX_FILE_SIZE,
    expiring_days: ExpiringOption = 30,
    trust: TrustOption = None,
    team: TeamOption = None,
    trust_stores: Annotated[
        bool,
        typer.Option(
            "--trust-stores",
            help="Also read the trust stores at their well-known places (system bundles, anchor "
            "folders, Java cacerts, NSS databases, certifi).",
        ),
    ] = False,
    root: Annotated[
        Path, typer.Option("--root", help="With --trust-stores: the host's root (a mounted image).")
    ] = Path("/"),
    host: Annotated[
        str | None, typer.Option("--host", help="Whose trust stores these are (default: this host's name).")
    ] = None,
    fmt: FormatOption = Format.TABLE,
    fail_on: FailOnOption = None,
    quiet: QuietOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Search files for certificates (PEM, DER, PKCS#7, PKCS#12, JKS) and private keys; the
    trust stores met (or, with --trust-stores, at their usual places) are read too."""
    # Values as click read them (TakesText): converted here.
    paths = [Path(p) for p in paths or []]
    root = converted(root, Path, "--root")
    password_file = converted(password_file, Path, "--password-file")
    max_file_size = converted(max_file_size, int, "--max-file-size")
    expiring_days, trust = _common_options(expiring_days, trust)
    fmt, data_dir = converted(fmt, Format, "--format"), converted(data_dir, Path, "--data-dir")
    threshold = Severity.parse(fail_on) if fail_on else None
    passwords: tuple[bytes, ...] = ()
    if password_file is not None:
        try:
            raw = password_file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read --password-file {password_file}: {exc.strerror}") from None
        passwords = tuple(line for line in raw.splitlines() if line)
    from certfleet.discovery.files import FileScanOptions
    from certfleet.discovery.requests import FileScanRequest

    options = FileScanOptions(
        max_file_size=max_file_size, follow_symlinks=follow_symlinks, passwords=passwords
    )
    request = FileScanRequest(
        paths=tuple(str(p) for p in paths),
        options=options,
        expiring_days=expiring_days,
        trust=_parse_trust(_read_trust(trust)),
        team=team,
        trust_stores=bool(trust_stores),
        root=str(root),
        host=host,
    )
    server = remote_server()
    if server is not None:  # the server's own disks, as POST /api/v1/scans reads them
        if root != Path("/") or host is not None:
            die("--root and --host describe this host's stores: the server reads its own (drop them)")
        body = {
            "kind": "files",
            "targets": [str(p) for p in paths],
            "max_file_size": max_file_size,
            "follow_symlinks": follow_symlinks,
            "passwords": [p.decode("utf-8", "replace") for p in passwords],
            "trust_stores": bool(trust_stores),
        }
        from certfleet.cli._scan_remote import run_remote_scan

        run_remote_scan(server, {**body, **_shared(expiring_days, trust, team)}, fmt, threshold)
        return

    def scan(p: DiscoveryRuntime) -> ScanReport:
        if not wants_progress(quiet):
            return p.discovery.scan_files(request, actor="cli")
        with progress_bar("files") as bar:
            return p.discovery.scan_files(request, actor="cli", observer=bar)

    with _sigterm_interrupts():
        report = _execute(data_dir, db, scan)
    finish_scan(report, fmt, threshold)
