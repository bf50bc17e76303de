"""``serve --workers N``: N serving processes on the listening sockets the parent bound.

The CLI binds the sockets (:func:`listen`), runs the first-start work (CA, admin token, server
identity) in a forked child (:func:`in_child`), then replaces itself with a new interpreter
that runs only this module (:func:`become_supervisor`, :func:`main`). That supervisor starts
each worker as another new interpreter (``posix_spawn`` of ``certfleet.cli._serve_worker``)
that inherits the sockets and imports and opens its own platform. So the supervisor never
holds the application (FastAPI, SQLAlchemy, the services), nor even typer and pydantic: it is
a 12 MiB single-threaded process (no database, no jobs) instead of a 120 MiB copy of a
worker, and no connection, lock, thread or page of its heap reaches a worker. The kernel
spreads connections over the workers accepting on the shared sockets.

Workers keep glibc's default malloc arenas: ``MALLOC_ARENA_MAX=2`` made no measurable
difference after the issuance benchmark (``bench/memory.py --arena-max``), a worker running
only a handful of threads.

A worker that dies after it started serving is replaced; one that dies before it ever served
stops the node (a broken configuration would only crash again). SIGTERM or SIGINT is passed
to every worker, which finishes its requests in flight
(:data:`certfleet.api.server.GRACEFUL_SHUTDOWN_SECONDS`); a second signal abandons them.
Written by hand because uvicorn's own supervisor takes one application and one socket, and
certfleet serves two listeners with mTLS on one of them.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar, cast

__all__ = [
    "ChildExited",
    "WorkerFailed",
    "WorkerProgram",
    "become_supervisor",
    "in_child",
    "listen",
    "main",
    "supervise",
]

_log = logging.getLogger("certfleet.serve")

_T = TypeVar("_T")


class WorkerFailed(Exception):
    """A worker exited before it ever served: the node stops."""


class ChildExited(Exception):
    """The child of :func:`in_child` exited with ``code``: having said why on stderr, or, when
    it died without a word (a signal), with ``reason`` for the parent to say."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(reason or f"exited with status {code}")
        self.code = code
        self.reason = reason


def listen(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket. Done before anything else at start-up, so a port in use is
    reported at once, before a first start creates a CA or mints its one-time admin token."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve listen address {host!r}: {exc.strerror}") from exc
    # The protocol from getaddrinfo, not 0: asyncio sets TCP_NODELAY only on a socket whose
    # protocol says TCP (else every kept-alive response waits for a delayed ACK).
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _single_threaded(what: str) -> None:
    if threading.active_count() != 1:  # a fork copies one thread: another's locks would stay held
        raise RuntimeError(f"serve must {what} before any thread starts")


def in_child(work: Callable[[], _T]) -> _T:
    """``work()`` run in a forked child, so that what it imports and opens dies with the child;
    its result (or the exception it raised) comes back pickled. :class:`ChildExited` when the
    child left with an exit status of its own (``typer.Exit`` after a one-line error)."""
    _single_threaded("fork")
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its effects are asserted by the parent)
        os.close(read_fd)
        code = 0
        try:
            outcome: tuple[str, object] = ("result", work())
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            outcome = ("exit", code)
        except BaseException as exc:  # noqa: BLE001 - the outermost frame of a forked process
            exit_code = getattr(exc, "exit_code", None)  # the CLI's own exit (typer.Exit)
            if isinstance(exit_code, int):
                code = exit_code
                outcome = ("exit", code)
            else:
                outcome = ("raised", _portable(exc))
        try:
            with os.fdopen(write_fd, "wb") as out:
                pickle.dump(outcome, out)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if not data:  # killed before it could answer
        code = os.waitstatus_to_exitcode(status)
        raise ChildExited(128 - code if code < 0 else code or 1, f"the first-start process died ({code})")
    # From our own child, over a pipe nothing else holds: trusted.
    kind, value = pickle.loads(data)  # noqa: S301
    if kind == "raised":
        raise cast("BaseException", value)
    if kind == "exit":
        raise ChildExited(cast("int", value))
    return cast("_T", value)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError saying what it was; either way with
    the child's traceback as a note (the parent's outermost handler logs it)."""
    exc.add_note("in serve's first-start child:\n" + "".join(traceback.format_exception(exc)))
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    except Exception:  # noqa: BLE001 - any exception type may refuse pickling
        copy = RuntimeError(f"{type(exc).__name__}: {exc}")
        copy.__notes__ = list(getattr(exc, "__notes__", []))
        return copy
    return exc


@dataclass(frozen=True)
class WorkerProgram:
    """How to start a worker: ``argv`` followed by ``INDEX READY_FD PAYLOAD_FD *SOCKET_FDS``.
    The worker reads ``payload`` (its configuration) with ``os.pread`` from PAYLOAD_FD, writes
    the byte INDEX to READY_FD once it accepts connections, and serves on the sockets."""

    argv: Sequence[str]
    env: Mapping[str, str]
    payload: bytes
    socket_fds: Sequence[int]


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


class _Spawner:
    """Starts workers of ``program``. The payload sits in a memory file the workers read from
    offset 0 (a replacement reads it again); its fd, the ready pipe's and the sockets' are
    inherited across exec, nothing else of the parent's is."""

    def __init__(self, program: WorkerProgram, ready_fd: int) -> None:
        self._payload_fd = os.memfd_create("certfleet-serve-worker")
        os.write(self._payload_fd, program.payload)
        inherited = [ready_fd, self._payload_fd, *program.socket_fds]
        for fd in inherited:
            os.set_inheritable(fd, True)
        self._argv = [*program.argv]
        self._fds = [str(fd) for fd in inherited]
        self._env = dict(program.env)

    def spawn(self, index: int) -> _Worker:
        argv = [*self._argv, str(index), *self._fds]
        pid = os.posix_spawn(argv[0], argv, self._env)
        return _Worker(index, pid, os.pidfd_open(pid))

    def close(self) -> None:
        os.close(self._payload_fd)


def _reap(worker: _Worker) -> int:
    _, status = os.waitpid(worker.pid, 0)
    os.close(worker.pidfd)
    return os.waitstatus_to_exitcode(status)


def supervise(count: int, program: WorkerProgram, on_started: Callable[[], None]) -> None:
    """Run ``count`` workers until SIGTERM/SIGINT; ``on_started`` once all of them serve.
    Raises :class:`WorkerFailed` when a worker exits before it served."""
    _single_threaded("start its workers")
    read_fd, ready_fd = os.pipe()
    spawner = _Spawner(program, ready_fd)
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
            worker = spawner.spawn(index)
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
                replacement = spawner.spawn(worker.index)
                state.workers[replacement.pidfd] = replacement
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        spawner.close()
        os.close(read_fd)
        os.close(ready_fd)
    if failure is not None:
        raise WorkerFailed(failure)


def become_supervisor(count: int, program: WorkerProgram, started: str, failed: str) -> NoReturn:
    """Replace this process (the CLI, with typer, pydantic and Rich imported: 35 MiB) by a new
    interpreter running :func:`main` (12 MiB), which supervises ``count`` workers of
    ``program`` and prints ``started`` once they all serve, or ``failed`` (the one-time
    token, if any) when one could not start. The pid stays the same, so the signals of
    systemd or a shell still reach the supervisor."""
    plan = {
        "count": count,
        "argv": list(program.argv),
        "env": dict(program.env),
        "payload": program.payload,
        "socket_fds": list(program.socket_fds),
        "started": started,
        "failed": failed,
    }
    plan_fd = os.memfd_create("certfleet-serve-supervisor")
    os.write(plan_fd, pickle.dumps(plan))  # builtins only: reading it imports nothing
    for fd in (plan_fd, *program.socket_fds):
        os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "certfleet.cli._supervisor", str(plan_fd)]
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter, no shell wanted


def _read_memfd(fd: int) -> bytes:
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    os.close(fd)
    return data


def main(argv: Sequence[str]) -> int:
    """The supervisor after :func:`become_supervisor`: ``python -m certfleet.cli._supervisor
    PLAN_FD``. Exit 0 after SIGTERM/SIGINT; 2, with the reason on stderr, when a worker could
    not start."""
    # Written by the CLI that exec'd this process into a memory file only it held: trusted.
    plan = pickle.loads(_read_memfd(int(argv[0])))  # noqa: S301
    program = WorkerProgram(plan["argv"], plan["env"], plan["payload"], plan["socket_fds"])

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        supervise(plan["count"], program, lambda: show(plan["started"]))
    except WorkerFailed as exc:
        show(plan["failed"])
        # The CLI's one-line form (certfleet.cli._common.die), without importing typer.
        print(f"error: cannot start server: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
