"""One worker of ``certfleet serve --workers N``: a new interpreter the supervisor
(:mod:`certfleet.cli._supervisor`) starts as

    python -m certfleet.cli._serve_worker INDEX READY_FD PAYLOAD_FD HTTPS_FD HTTP_FD

It reads the settings and the server identity the supervisor prepared from PAYLOAD_FD, opens
its own platform and serves both listeners on the inherited sockets. Worker 0 also runs the
node's background jobs (renewal, campaigns, revocation maintenance, notifications: once per
node, and leased across nodes as before) and the ``[metrics] listen`` listener; every worker
runs the per-process jobs (scans it accepted)."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from certfleet.config import Settings
    from certfleet.services.server_identity import ServerIdentity

__all__ = ["main"]


def _serve(
    index: int,
    settings: Settings,
    identity: ServerIdentity,
    sockets: tuple[socket.socket, socket.socket],
    ready: Callable[[], None],
) -> None:
    from certfleet.api.server import run_servers
    from certfleet.app import open_platform
    from certfleet.metrics import metrics_listener

    p = open_platform(settings, migrate=False)
    try:
        # Per-process jobs (scans this worker accepted) in every worker; the node's jobs
        # once, in worker 0 (and leased across nodes as always).
        scheduler = p.scheduler if index == 0 else p.scheduler.restricted(lambda job: job.per_process)
        with contextlib.ExitStack() as stack:
            if index == 0:
                try:
                    stack.enter_context(metrics_listener(p.metrics))
                except OSError as exc:
                    from certfleet.cli._common import die  # typer: only on the way out

                    die(f"cannot start the metrics listener: {exc}")
            stack.enter_context(scheduler.running())
            run_servers(p, identity, *sockets, on_started=ready)
    finally:
        p.close()


def _work(index: int, payload_fd: int, socket_fds: Sequence[int], ready: Callable[[], None]) -> None:
    size = os.fstat(payload_fd).st_size
    # Written by the supervisor into a memory file only its children hold: trusted.
    settings, identity = pickle.loads(os.pread(payload_fd, size, 0))  # noqa: S301
    os.close(payload_fd)
    https_socket, http_socket = (socket.socket(fileno=fd) for fd in socket_fds)
    try:
        _serve(index, settings, identity, (https_socket, http_socket), ready)
    except OSError as exc:
        from certfleet.cli._common import die

        die(f"cannot start server: worker {index}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a worker's outermost frame: one line, traceback logged
        from certfleet.cli._common import die, log_internal_error

        where = log_internal_error(exc, str(settings.data_dir.root))
        die(f"internal error in worker {index}: {type(exc).__name__}: {exc} (details in {where})", 70)


def main(argv: Sequence[str]) -> int:
    index, ready_fd, payload_fd, *socket_fds = (int(arg) for arg in argv)

    def ready() -> None:
        os.write(ready_fd, bytes([index]))

    try:
        _work(index, payload_fd, socket_fds, ready)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the outermost frame of the worker process
        exit_code = getattr(exc, "exit_code", None)  # the CLI's own exit (typer.Exit): already said
        if isinstance(exit_code, int):
            return exit_code
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
