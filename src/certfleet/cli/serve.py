"""``certfleet serve``: the HTTPS API and dashboard, the plain-HTTP listener for CA material,
CRLs and OCSP, and the background jobs, in ``--workers`` processes (one per core by default).

The application (FastAPI, uvicorn, the services) is imported inside the command, so that
``certfleet --help`` and every other command start without it."""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from certfleet.cli._common import DataDirOption, DbOption, die, log_internal_error, platform, settings_for
from certfleet.cli._remote import local_only
from certfleet.cli.acme import (
    AcmeHttp01PortOption,
    AcmeResolverOption,
    AcmeTlsAlpn01PortOption,
    with_acme_options,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from certfleet.app import Platform
    from certfleet.config import Settings
    from certfleet.services.server_identity import ServerIdentity


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _first_admin_token(p: Platform) -> str | None:
    """The admin token of a first start (the rule: :meth:`TokenService.create_first_admin`)."""
    minted = p.tokens.create_first_admin(actor="system:serve")
    return minted.token if minted is not None else None


def _print_tls_root(p: Platform) -> None:
    """Over an ML-DSA default root the listener chains to a classic TLS root of its own: say
    which root HTTPS clients pin (``root.pem`` below is the one leaves chain to)."""
    from certfleet.x509 import fingerprint_sha256

    pin = p.authorities.tls_root()
    if pin is not None and pin.id != p.authorities.root().id:
        print(
            f"TLS root (pin):      sha256 {fingerprint_sha256(pin.certificate)} ('certfleet ca root --tls')"
        )


class _Banner:
    """What a first start prints once both listeners accept connections. The token is printed
    even if serving then fails: it was minted and will never be shown again."""

    def __init__(
        self,
        https: tuple[str, int],
        http: tuple[str, int],
        admin_token: str | None,
    ) -> None:
        self._https = f"https://{_host(https[0])}:{https[1]}"
        self._http = f"http://{_host(http[0])}:{http[1]}"
        self._token = admin_token
        self._metrics: str | None = None

    def metrics(self, address: tuple[str, int] | None) -> None:
        """The ``[metrics] listen`` listener's address, when there is one."""
        if address is not None:
            self._metrics = f"http://{_host(address[0])}:{address[1]}/metrics"

    def _show_token(self) -> None:
        if self._token:
            print(f"Admin API token (shown once): {self._token}")
            self._token = None
        sys.stdout.flush()

    def started(self) -> None:
        print(f"Dashboard:           {self._https}/")
        print(f"certfleet API:       {self._https}/api/v1/ (OpenAPI: {self._https}/api/v1/openapi.json)")
        print(f"Metrics:             {self._metrics or self._https + '/metrics'}")
        print(f"CA material:         {self._http}/ca/root.pem")
        print(f"Root CA certificate: curl -o root.pem {self._http}/ca/root.pem")
        self._show_token()

    def failed(self) -> None:
        self._show_token()


def serve(
    https: Annotated[
        str | None, typer.Option("--https", help="HTTPS listen address (default 127.0.0.1:8443).")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="Plain HTTP listen address (default 127.0.0.1:8080).")
    ] = None,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Extra DNS name or IP for the HTTPS certificate; repeat."),
    ] = None,
    init: Annotated[
        bool,
        typer.Option("--init", help="On first start, create the CA and print an admin token (once)."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Serving processes (default: [server] workers, or one per CPU core).",
        ),
    ] = None,
    acme_resolver: AcmeResolverOption = None,
    acme_http01_port: AcmeHttp01PortOption = None,
    acme_tlsalpn01_port: AcmeTlsAlpn01PortOption = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Serve the REST API over HTTPS and CA material over HTTP until SIGTERM."""
    local_only("serve")
    from certfleet.api.server import listen
    from certfleet.app import server_identity
    from certfleet.cli.init import initialize
    from certfleet.config import parse_bind

    settings = with_acme_options(
        settings_for(data_dir, db), acme_resolver, acme_http01_port, acme_tlsalpn01_port
    )
    https_bind = parse_bind(https) if https else settings.server.https_bind
    http_bind = parse_bind(http) if http else settings.server.http_bind
    count = workers or settings.server.worker_count()
    with contextlib.ExitStack() as stack:
        try:
            # Bind first: a port in use must fail before a first start creates its CA or token.
            https_socket = stack.enter_context(listen(*https_bind))
            http_socket = stack.enter_context(listen(*http_bind))
        except OSError as exc:
            die(f"cannot start server: {exc}")
        with platform(data_dir, db, create=init, settings=settings) as p:
            if not p.authorities.is_initialized():
                if not init:
                    die("no CA yet: run 'certfleet init' first (or 'certfleet serve --init')")
                initialize(p, "ec-p256", "certfleet")
            identity = server_identity(p, tuple(server_name or ()))
            _print_tls_root(p)
            token = _first_admin_token(p) if init else None
            if count == 1:
                _serve_here(p, identity, (https_socket, http_socket), _Banner(https_bind, http_bind, token))
                return
        # Several workers: this platform is closed (no connection, no thread) before the fork.
        _serve_forked(settings, identity, (https_socket, http_socket), count, (https_bind, http_bind, token))


def _serve_here(
    p: Platform,
    identity: ServerIdentity,
    sockets: tuple[socket.socket, socket.socket],
    banner: _Banner,
) -> None:
    """One process serves both listeners and runs every background job."""
    from certfleet.api.server import run_servers
    from certfleet.metrics import metrics_listener

    with contextlib.ExitStack() as stack:
        try:
            banner.metrics(stack.enter_context(metrics_listener(p.metrics)))  # [metrics] listen
        except OSError as exc:
            die(f"cannot start the metrics listener: {exc}")
        try:
            # Every background job (renewal, campaigns, revocation maintenance,
            # notifications, scans) runs in the platform's scheduler beside the listeners.
            with p.scheduler.running():
                run_servers(p, identity, *sockets, on_started=banner.started)
        except OSError as exc:
            banner.failed()
            die(f"cannot start server: {exc}")


def _serve_forked(
    settings: Settings,
    identity: ServerIdentity,
    sockets: tuple[socket.socket, socket.socket],
    count: int,
    banner_args: tuple[tuple[str, int], tuple[str, int], str | None],
) -> None:
    """``count`` forked workers (:mod:`certfleet.cli._supervisor`); worker 0 also runs the
    node's background jobs and the ``[metrics] listen`` listener."""
    from certfleet.api.server import run_servers
    from certfleet.app import open_platform
    from certfleet.cli._supervisor import WorkerFailed, supervise
    from certfleet.metrics import count_across_processes, metrics_listener

    https_bind, http_bind, token = banner_args
    count_across_processes(settings.data_dir.root / "metrics")
    banner = _Banner(https_bind, http_bind, token)
    if settings.metrics.listen is not None:
        banner.metrics(settings.metrics.listen)

    def work(index: int, ready: Callable[[], None]) -> None:
        try:
            serve_worker(index, ready)
        except (typer.Exit, OSError) as exc:
            if isinstance(exc, OSError):
                die(f"cannot start server: worker {index}: {exc}")
            raise
        except Exception as exc:  # noqa: BLE001 - a worker's outermost frame: one line, traceback logged
            where = log_internal_error(exc, str(settings.data_dir.root))
            die(f"internal error in worker {index}: {type(exc).__name__}: {exc} (details in {where})", 70)

    def serve_worker(index: int, ready: Callable[[], None]) -> None:
        p = open_platform(settings, migrate=False)
        try:
            # Per-process jobs (scans this worker accepted) in every worker; the node's
            # jobs once, in worker 0 (and leased across nodes as always).
            scheduler = p.scheduler if index == 0 else p.scheduler.restricted(lambda job: job.per_process)
            with contextlib.ExitStack() as stack:
                if index == 0:
                    try:
                        stack.enter_context(metrics_listener(p.metrics))
                    except OSError as exc:
                        die(f"cannot start the metrics listener: {exc}")
                stack.enter_context(scheduler.running())
                run_servers(p, identity, *sockets, on_started=ready)
        finally:
            p.close()

    try:
        supervise(count, work, banner.started)
    except WorkerFailed as exc:
        banner.failed()
        die(f"cannot start server: {exc}")
