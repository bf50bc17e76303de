"""Run the HTTPS API and the plain-HTTP listener in one process; stop cleanly on SIGTERM.

uvicorn with its compiled pieces: httptools parses HTTP/1.1 and uvloop runs the event loop
(``bench/serving.py``: about four times h11 on asyncio). granian is faster still on a bare
route, but it hands the application no client certificate, and agents authenticate with one
bound to their TLS connection (see :mod:`certfleet.api._peer_certificate`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Callable, Generator

import uvicorn
import uvloop

from certfleet.api import create_api_app, create_public_app
from certfleet.api._coalescing import CoalescingProtocol
from certfleet.api._peer_certificate import PeerCertificateProtocol, write_client_ca_file
from certfleet.api._ports import Platform
from certfleet.services.server_identity import ServerIdentity

__all__ = ["run_servers"]

# After SIGTERM, requests in flight get this long to finish before their tasks are cancelled,
# so a stuck client can never hold a shutdown (systemd's own stop timeout is 90 s).
GRACEFUL_SHUTDOWN_SECONDS = 10


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`run_servers`, which must stop
    both listeners on one signal (uvicorn would install one handler per server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run_servers(
    platform: Platform,
    identity: ServerIdentity,
    https_socket: socket.socket,
    http_socket: socket.socket,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; a second signal abandons requests still in flight."""
    api = uvicorn.Config(
        create_api_app(platform),
        ssl_certfile=str(identity.certificate_file),
        ssl_keyfile=str(identity.key_file),
        ssl_keyfile_password=identity.key_password.decode(),
        # mTLS for agents: a client certificate is asked for but optional (tokens work as
        # before); one that is sent must chain to certfleet's CA. See _peer_certificate.
        ssl_cert_reqs=ssl.CERT_OPTIONAL,
        ssl_ca_certs=str(
            write_client_ca_file(platform.authorities.hierarchy(), identity.certificate_file.parent)
        ),
        http=PeerCertificateProtocol,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    public = uvicorn.Config(
        create_public_app(platform),
        http=CoalescingProtocol,
        loop="uvloop",
        # Nothing on this listener reads the client's address: no X-Forwarded-* rewriting
        # (a middleware call on every request otherwise).
        proxy_headers=False,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # Load now (the TLS context above all) so a bad key or certificate fails before serving.
    api.load()
    public.load()
    servers = [(_Server(api), https_socket), (_Server(public), http_socket)]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server, _ in servers:
                if server.should_exit:
                    server.force_exit = True
                server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
        # uvicorn has no start-up event to await: poll its flag (or a task that died early).
        while not all(server.started for server, _ in servers):
            if any(task.done() for task in tasks):
                stop()
                break
            await asyncio.sleep(0.02)
        else:
            if on_started is not None:
                on_started()
        await asyncio.gather(*tasks)

    uvloop.run(main())
