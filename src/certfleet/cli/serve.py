"""``certfleet serve``: the HTTPS API and dashboard, the plain-HTTP listener for CA material,
CRLs and OCSP, and the background jobs, in ``--workers`` processes (one per core by default).

The application (FastAPI, uvicorn, the services) is imported inside the command, so that
``certfleet --help`` and every other command start without it."""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from certfleet.cli._common import (
    DataDirOption,
    DbOption,
    die,
    platform,
    require_initialized,
    settings_for,
)
from certfleet.cli._remote import local_only
from certfleet.cli.acme import (
    AcmeHttp01PortOption,
    AcmeResolverOption,
    AcmeTlsAlpn01PortOption,
    with_acme_options,
)

if TYPE_CHECKING:
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

    def started_text(self) -> str:
        return (
            f"Dashboard:           {self._https}/\n"
            f"certfleet API:       {self._https}/api/v1/ (OpenAPI: {self._https}/api/v1/openapi.json)\n"
            f"Metrics:             {self._metrics or self._https + '/metrics'}\n"
            f"CA material:         {self._http}/ca/root.pem\n"
            f"Root CA certificate: curl -o root.pem {self._http}/ca/root.pem\n"
        ) + self.failed_text()

    def failed_text(self) -> str:
        return f"Admin API token (shown once): {self._token}\n" if self._token else ""

    def started(self) -> None:
        self._show(self.started_text())

    def failed(self) -> None:
        self._show(self.failed_text())

    def _show(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()
        self._token = None


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
    from certfleet.cli._supervisor import listen
    from certfleet.config import parse_bind

    settings = with_acme_options(
        settings_for(data_dir, db), acme_resolver, acme_http01_port, acme_tlsalpn01_port
    )
    https_bind = parse_bind(https) if https else settings.server.https_bind
    http_bind = parse_bind(http) if http else settings.server.http_bind
    count = workers or settings.server.worker_count()
    names = tuple(server_name or ())
    with contextlib.ExitStack() as stack:
        try:
            # Bind first: a port in use must fail before a first start creates its CA or token.
            sockets = (stack.enter_context(listen(*https_bind)), stack.enter_context(listen(*http_bind)))
        except OSError as exc:
            die(f"cannot start server: {exc}")
        if count == 1:
            with platform(data_dir, db, create=init, settings=settings) as p:
                identity, token = _first_start(p, init, names)
                _serve_here(p, identity, sockets, _Banner(https_bind, http_bind, token))
            return
        _serve_forked(settings, init, names, sockets, count, (https_bind, http_bind))


def _first_start(p: Platform, init: bool, names: tuple[str, ...]) -> tuple[ServerIdentity, str | None]:
    """The CA (``--init``), the listener's certificate and the first admin token."""
    from certfleet.app import server_identity
    from certfleet.cli.init import initialize

    if not p.authorities.is_initialized():
        if not init:
            die("no CA yet: run 'certfleet init' first (or 'certfleet serve --init')")
        initialize(p, "ec-p256", "certfleet")
    identity = server_identity(p, names)
    _print_tls_root(p)
    return identity, _first_admin_token(p) if init else None


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


def _prepare(
    settings: Settings, init: bool, names: tuple[str, ...]
) -> tuple[bytes, str | None, dict[str, str]]:
    """In a child of the supervisor (:func:`certfleet.cli._supervisor.in_child`): the first
    start's work, and what the workers start with: the settings and the server identity,
    pickled here (unpickling a ServerIdentity would import the services into the
    supervisor), and the environment (request counters shared across them in the data
    directory, emptied here once per start)."""
    from certfleet.metrics import count_across_processes

    with platform(None, None, create=init, settings=settings) as p:
        identity, token = _first_start(p, init, names)
    count_across_processes(settings.data_dir.root / "metrics")
    return pickle.dumps((settings, identity)), token, dict(os.environ)


def _serve_forked(
    settings: Settings,
    init: bool,
    names: tuple[str, ...],
    sockets: tuple[socket.socket, socket.socket],
    count: int,
    binds: tuple[tuple[str, int], tuple[str, int]],
) -> None:
    """``count`` worker processes under a supervisor that never imports the application: the
    first start's work runs in a child, then this process becomes the supervisor
    (:mod:`certfleet.cli._supervisor`), which starts the workers
    (:mod:`certfleet.cli._serve_worker`)."""
    from certfleet.cli._supervisor import ChildExited, WorkerProgram, become_supervisor, in_child

    if not init:
        require_initialized(settings)  # here, not in the child: the message is the parent's
    try:
        payload, token, env = in_child(functools.partial(_prepare, settings, init, names))
    except ChildExited as exc:
        if exc.reason is not None:
            die(f"cannot start server: {exc.reason}", exc.code)
        raise typer.Exit(exc.code) from None
    banner = _Banner(*binds, token)
    if settings.metrics.listen is not None:
        banner.metrics(settings.metrics.listen)
    program = WorkerProgram(
        argv=[sys.executable, "-m", "certfleet.cli._serve_worker"],
        env=env,
        payload=payload,
        socket_fds=[sock.fileno() for sock in sockets],
    )
    become_supervisor(count, program, banner.started_text(), banner.failed_text())
