"""``serve --workers N``: N forked serving processes on the listening sockets the parent bound.

The parent binds the sockets, does the first-start work (CA, admin token, server identity)
with a platform it then closes, and forks while it has one thread and no database
connection: every worker opens its own platform, so no connection, lock or thread crosses a
fork. The kernel spreads connections over the workers accepting on the shared sockets.

The parent stays a small single-threaded supervisor (no database, no jobs), so it can fork
again at any time: a worker that dies after it started serving is replaced; one that dies
before it ever served stops the node (a broken configuration would only crash again).
SIGTERM or SIGINT is passed to every worker, which finishes its requests in flight
(:data:`certfleet.api.server.GRACEFUL_SHUTDOWN_SECONDS`); a second signal abandons them.

Worker 0 also runs the node's background jobs (renewal, campaigns, revocation maintenance,
notifications: once per node, and leased across nodes as before); every worker runs the
per-process ones (scans it accepted). Written by hand because uvicorn's own supervisor takes
one application and one socket, and certfleet serves two listeners with mTLS on one of them.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["WorkerFailed", "supervise"]

_log = logging.getLogger("certfleet.serve")

# A worker runs ``work(index, ready)`` and returns when it has stopped; ``ready()`` tells the
# parent it accepts connections.
Work = Callable[[int, Callable[[], None]], None]


class WorkerFailed(Exception):
    """A worker exited before it ever served: the node stops."""


@dataclass
class _Worker:
    index: int
    pid: int
    pidfd: int
    ready: bool = False


@dataclass
class _State:
    workers: dict[int, _Worker] = field(default_factory=dict)  # by pidfd
    stopping: bool = False
    signals: int = 0


def _child(index: int, work: Work, ready_fd: int) -> None:
    """The forked worker: never returns (``os._exit``), so the parent's ``with`` blocks and
    ``atexit`` handlers never run twice."""
    code = 0
    try:
        # The parent's Python handlers were inherited: the worker's event loop installs its own.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def ready() -> None:
            os.write(ready_fd, bytes([index]))

        work(index, ready)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the outermost frame of a forked process
        exit_code = getattr(exc, "exit_code", None)  # the CLI's own exit (typer.Exit): already said
        if isinstance(exit_code, int):
            code = exit_code
        else:
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _spawn(index: int, work: Work, ready_fd: int, read_fd: int) -> _Worker:
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(index, work, ready_fd)
    return _Worker(index, pid, os.pidfd_open(pid))


def _reap(worker: _Worker) -> int:
    _, status = os.waitpid(worker.pid, 0)
    os.close(worker.pidfd)
    return os.waitstatus_to_exitcode(status)


def supervise(count: int, work: Work, on_started: Callable[[], None]) -> None:
    """Run ``count`` workers until SIGTERM/SIGINT; ``on_started`` once all of them serve.
    Raises :class:`WorkerFailed` when a worker exits before it served."""
    if threading.active_count() != 1:  # a fork copies one thread: another's locks would stay held
        raise RuntimeError("serve must fork its workers before any thread starts")
    read_fd, ready_fd = os.pipe()
    state = _State()

    def forward(signum: int, _frame: object) -> None:
        state.stopping = True
        state.signals += 1
        for worker in state.workers.values():
            # A second signal: SIGINT makes uvicorn abandon requests in flight.
            os.kill(worker.pid, signal.SIGTERM if state.signals == 1 else signal.SIGINT)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = False
    failure: str | None = None
    try:
        for index in range(count):
            worker = _spawn(index, work, ready_fd, read_fd)
            state.workers[worker.pidfd] = worker
        while state.workers:
            readable, _, _ = select.select([read_fd, *state.workers], [], [])
            if read_fd in readable:
                for index in os.read(read_fd, 256):
                    for worker in state.workers.values():
                        if worker.index == index:
                            worker.ready = True
                if not started and sum(w.ready for w in state.workers.values()) == count:
                    started = True
                    on_started()
            for fd in readable:
                if fd == read_fd or fd not in state.workers:
                    continue
                worker = state.workers.pop(fd)
                code = _reap(worker)
                if state.stopping:
                    continue
                if not worker.ready:
                    failure = f"worker {worker.index} exited with status {code} before serving"
                    forward(signal.SIGTERM, None)
                    continue
                _log.error(
                    "worker %d (pid %d) exited with status %d: restarting it", worker.index, worker.pid, code
                )
                replacement = _spawn(worker.index, work, ready_fd, read_fd)
                state.workers[replacement.pidfd] = replacement
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(ready_fd)
    if failure is not None:
        raise WorkerFailed(failure)
