from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from certfleet.api.server import listen, run_servers
from certfleet.app import Platform, server_identity
from certfleet.cli._common import DataDirOption, DbOption, die, platform, settings_for
from certfleet.cli.acme import (
    AcmeHttp01PortOption,
    AcmeResolverOption,
    AcmeTlsAlpn01PortOption,
    with_acme_options,
)
from certfleet.cli.init import initialize
from certfleet.config import parse_bind
from certfleet.metrics import metrics_listener


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _first_admin_token(p: Platform) -> str | None:
    """The admin token of a first start (the rule: :meth:`TokenService.create_first_admin`)."""
    minted = p.tokens.create_first_admin(actor="system:serve")
    return minted.token if minted is not None else None


class _Banner:
    """What a first start prints once both listeners accept connections. The token is printed
    even if serving then fails: it was minted and will never be shown again."""

    def __init__(
        self,
        https: tuple[str, int],
        http: tuple[str, int],
        admin_token: str | None,
        metrics: tuple[str, int] | None = None,
    ) -> None:
        self._https = f"https://{_host(https[0])}:{https[1]}"
        self._http = f"http://{_host(http[0])}:{http[1]}"
        self._token = admin_token
        self._metrics = f"http://{_host(metrics[0])}:{metrics[1]}/metrics" if metrics else None

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
    acme_resolver: AcmeResolverOption = None,
    acme_http01_port: AcmeHttp01PortOption = None,
    acme_tlsalpn01_port: AcmeTlsAlpn01PortOption = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Serve the REST API over HTTPS and CA material over HTTP until SIGTERM."""
    settings = with_acme_options(
        settings_for(data_dir, db), acme_resolver, acme_http01_port, acme_tlsalpn01_port
    )
    https_bind = parse_bind(https) if https else settings.server.https_bind
    http_bind = parse_bind(http) if http else settings.server.http_bind
    with contextlib.ExitStack() as stack:
        try:
            # Bind first: a port in use must fail before a first start creates its CA or token.
            https_socket = stack.enter_context(listen(*https_bind))
            http_socket = stack.enter_context(listen(*http_bind))
        except OSError as exc:
            die(f"cannot start server: {exc}")
        p = stack.enter_context(platform(data_dir, db, create=init, settings=settings))
        try:
            metrics_at = stack.enter_context(metrics_listener(p.metrics))  # [metrics] listen, if set
        except OSError as exc:
            die(f"cannot start the metrics listener: {exc}")
        if not p.authorities.is_initialized():
            if not init:
                die("no CA yet: run 'certfleet init' first (or 'certfleet serve --init')")
            initialize(p, "ec-p256", "certfleet")
        identity = server_identity(p, tuple(server_name or ()))
        banner = _Banner(https_bind, http_bind, _first_admin_token(p) if init else None, metrics_at)
        try:
            # Every background job (renewal, campaigns, revocation maintenance,
            # notifications) runs in the platform's scheduler beside the listeners.
            with p.scheduler.running():
                run_servers(p, identity, https_socket, http_socket, on_started=banner.started)
        except OSError as exc:
            banner.failed()
            die(f"cannot start server: {exc}")
