"""Run the HTTPS API and the plain-HTTP listener in one process; stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Generator

import uvicorn

from certfleet.api import create_api_app, create_public_app
from certfleet.app import Platform
from certfleet.services.server_identity import ServerIdentity

__all__ = ["run_servers"]


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`run_servers`, which must stop
    both listeners on one signal (uvicorn would install one handler per server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run_servers(
    platform: Platform,
    identity: ServerIdentity,
    https: tuple[str, int],
    http: tuple[str, int],
    on_started: Callable[[], None] | None = None,
) -> None:
    api = uvicorn.Config(
        create_api_app(platform),
        host=https[0],
        port=https[1],
        ssl_certfile=str(identity.certificate_file),
        ssl_keyfile=str(identity.key_file),
        ssl_keyfile_password=identity.key_password.decode(),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    public = uvicorn.Config(
        create_public_app(platform),
        host=http[0],
        port=http[1],
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    servers = [_Server(api), _Server(public)]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                stop()
                break
            await asyncio.sleep(0.05)
        else:
            if on_started is not None:
                on_started()
        await asyncio.gather(*tasks)
        for task in tasks:
            if task.exception() is not None:  # pragma: no cover - surfaced by gather already
                raise task.exception()  # type: ignore[misc]

    asyncio.run(main())
    if not all(s.started for s in servers):
        raise OSError("a listener failed to start (is the port in use?)")
