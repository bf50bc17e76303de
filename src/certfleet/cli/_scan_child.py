"""``certfleet scan net``'s handshakes in a child interpreter, while the command starts up.

Why (issue 11: the discovery CLI at 10x ``sslyze --certinfo``): the handshakes and the rest
of the command's start-up (SQLAlchemy and the store imported, the database opened, the run
recorded as running, the trust anchors read) do not depend on each other until the outcomes
are judged, and together they are most of what a scan costs. Run side by side they take
one core each instead of one after the other. A child interpreter, not a thread: both halves
hold the GIL most of the time (imports are Python; so is the event loop between the
handshakes' OpenSSL calls). A new interpreter, not ``os.fork``: the CLI also runs inside
other processes (the test suite's, with server threads) whose locks a fork would copy held.

The child imports the network scanner only (no SQLAlchemy, no store, no typer), runs
:meth:`NetworkScanner.run` with the options the parent already checked, and hands the
outcomes back; judging and the inventory write stay in the parent, through the discovery
service and the store as before (:meth:`ChildScan.run` stands in for the scanner there).

The protocol, over the child's stdin and stdout (pipes private to the two processes, both
ends written here):

- parent to child: an 8-byte length, then a pickle of plain values: the endpoints as
  ``(host, port, sni)``, the scan options as a dict, the progress bar's label or ``None``.
  The parent then keeps stdin open: end of file means the parent is gone (killed, crashed)
  and the child exits at once, so no orphan keeps scanning.
- child to parent: one pickle, ``("ok", outcomes)`` (certificates as DER, each distinct one
  once, parsed by the parent as it unpickles them) or ``("error", summary, traceback)`` for a
  bug, then exit 0.

The child imports neither cryptography (the parent parses the certificates; a malformed one
gets the outcome the probe gives it in-process) nor anything else the handshakes do not need:
the sooner its handshakes finish, the less the parent waits for them.

The child ignores SIGINT: a Ctrl-C reaches the whole foreground process group, and the
parent, which decides what an interrupted scan leaves behind, stops the child with SIGTERM
(which closes the progress bar, so the terminal gets its cursor back) and reaps it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import pickle
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from certfleet.errors import CertfleetError

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterable, Sequence
    from types import FrameType, TracebackType

    from cryptography import x509

    from certfleet.discovery.observers import ScanObserver
    from certfleet.discovery.outcomes import EndpointOutcome
    from certfleet.discovery.scanner import NetScanOptions
    from certfleet.discovery.targets import Endpoint

__all__ = ["ChildScan", "ScanProcessFailed"]

_LENGTH_BYTES = 8
# How long a child stopped with SIGTERM may take to close its bar and exit before SIGKILL.
_STOP_GRACE_SECONDS = 5.0


class ScanProcessFailed(CertfleetError):
    """The scanner process ended without outcomes (a bug, or it was killed)."""


class _Presented(bytes):
    """A certificate as the server presented it (DER), not parsed: the child leaves the
    parsing to the parent, which needs the parsed certificates anyway (and so never imports
    cryptography, 30-45 ms of its start-up, nor parses each certificate twice). Equal
    certificates are one object (:class:`_DeferredChains`), so a fleet's shared
    intermediate travels and is parsed once."""


class _DeferredChains:
    """The child's ``chain_reader`` for :func:`~certfleet.discovery.probes.tls.probe_tls`."""

    def __init__(self) -> None:
        self._seen: dict[bytes, _Presented] = {}

    def __call__(self, ders: Sequence[bytes]) -> tuple[Any, ...]:
        return tuple(self._seen.setdefault(der, _Presented(der)) for der in ders)


class _Malformed:
    """A presented certificate that does not parse: :meth:`ChildScan.run` turns its
    outcome into the one the probe gives such a chain in-process."""

    def __init__(self, error: ValueError) -> None:
        self.error = error


def _certificate(der: bytes) -> x509.Certificate | _Malformed:
    from cryptography.x509 import load_der_x509_certificate

    try:
        return load_der_x509_certificate(der)
    except ValueError as exc:
        return _Malformed(exc)


class _Pickler(pickle.Pickler):
    """cryptography's certificates do not pickle: they travel as their DER encoding (a
    parsed one only when --http-checks had the child parse them, see :func:`_child`)."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is _Presented:
            return _certificate, (bytes(obj),)
        x509 = sys.modules.get("cryptography.x509")
        if x509 is not None and isinstance(obj, x509.Certificate):
            from cryptography.hazmat.primitives.serialization import Encoding

            return _certificate, (obj.public_bytes(Encoding.DER),)
        return NotImplemented


def _parsed(outcome: EndpointOutcome) -> EndpointOutcome:
    """``outcome`` as the probe makes it in-process when a presented certificate does not
    parse (the child did not parse them)."""
    observation = outcome.observation
    for cert in observation.chain if observation is not None else ():
        if isinstance(cert, _Malformed):
            from certfleet.discovery.probes.tls import malformed_chain

            failure = malformed_chain(cert.error)
            return replace(outcome, status=failure.status, reason=failure.reason, observation=None)
    return outcome


class _Unpickler(pickle.Unpickler):
    """Reads what the other end wrote: plain values, the scan's outcome types and
    certificates; any other class is refused (the pipes are private to the two processes,
    but a pickle should never be able to name a callable the protocol does not use)."""

    _ALLOWED = frozenset(
        {
            ("certfleet.cli._scan_child", "_certificate"),
            *(
                ("certfleet.discovery.outcomes", name)
                for name in ("EndpointOutcome", "HstsCheck", "NetStatus", "RedirectCheck", "TlsObservation")
            ),
            ("certfleet.discovery.targets", "Endpoint"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"the scanner protocol has no {module}.{name}")
        return super().find_class(module, name)


class ChildScan:
    """A network scan running in a child interpreter since :meth:`start`; :meth:`run` waits
    for its outcomes. Use it as a context manager: leaving stops and reaps the child."""

    def __init__(self, process: subprocess.Popen[bytes], count: int) -> None:
        self._process = process
        self._count = count

    @classmethod
    def start(
        cls, endpoints: Sequence[Endpoint], options: NetScanOptions, *, progress: str | None
    ) -> ChildScan:
        """Start scanning ``endpoints`` now; ``progress`` is the label of a progress bar the
        child draws on stderr (``None``: none)."""
        import subprocess

        request = pickle.dumps(
            ([(e.host, e.port, e.sni) for e in endpoints], vars(options).copy(), progress),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        # -P: the working directory is not put on the child's path, so a folder there named
        # like a package cannot stand in for certfleet's own modules.
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        scan = cls(process, len(endpoints))
        assert process.stdin is not None
        try:
            # Blocks only for a request over the pipe's buffer (64 KiB, about a thousand
            # endpoints), until the child has started and reads it.
            process.stdin.write(len(request).to_bytes(_LENGTH_BYTES, "big") + request)
            process.stdin.flush()
        except BrokenPipeError:
            pass  # the child is already gone: run() says so
        except BaseException:
            scan.close()
            raise
        return scan

    def run(
        self, endpoints: Iterable[Endpoint], observer: ScanObserver | None = None
    ) -> list[EndpointOutcome]:
        """The outcomes, in the order the endpoints were given to :meth:`start` (the scanner's
        :meth:`~certfleet.discovery.NetworkScanner.run`, whose arguments were already sent:
        the child drew the progress bar)."""
        from certfleet.discovery._lenient import lenient_parsing

        assert self._process.stdout is not None
        data = self._process.stdout.read()
        code = self._process.wait()
        if code != 0 or not data:
            raise ScanProcessFailed(f"the scanner process ended without outcomes (exit status {code})")
        with lenient_parsing():
            reply = _Unpickler(io.BytesIO(data)).load()
        if reply[0] != "ok":
            failure = ScanProcessFailed(f"the scanner process failed: {reply[1]}")
            failure.add_note(reply[2])
            raise failure
        outcomes: list[EndpointOutcome] = [_parsed(o) for o in reply[1]]
        if len(outcomes) != self._count:
            raise ScanProcessFailed(
                f"the scanner process returned {len(outcomes)} outcomes for {self._count}"
            )
        return outcomes

    def close(self) -> None:
        """Stop the child if it still runs, and reap it."""
        import subprocess

        process = self._process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()

    def __enter__(self) -> ChildScan:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- the child ------------------------------------------------------------------------------


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise SystemExit(1)  # the parent is gone before it said what to scan
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _exit_when_parent_gone(fd: int) -> None:
    while os.read(fd, 4096):
        pass
    os._exit(1)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _child() -> None:
    import threading
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    stdin = sys.stdin.fileno()
    size = int.from_bytes(_read_exactly(stdin, _LENGTH_BYTES), "big")
    targets, options, progress = _Unpickler(io.BytesIO(_read_exactly(stdin, size))).load()
    threading.Thread(target=_exit_when_parent_gone, args=(stdin,), daemon=True).start()

    from certfleet.discovery.probes.tls import probe_tls
    from certfleet.discovery.scanner import NetScanOptions, NetworkScanner
    from certfleet.discovery.targets import Endpoint

    reply: tuple[object, ...]
    try:
        scan_options = NetScanOptions(**options)
        # The chains are parsed by the parent, unless --http-checks: then a malformed one
        # must end the probe before its HSTS request, as in-process.
        reader = None if scan_options.http_checks else _DeferredChains()
        probe = probe_tls if reader is None else functools.partial(probe_tls, chain_reader=reader)
        scanner = NetworkScanner(scan_options, tls_probe=probe)
        endpoints = [Endpoint(host, port, sni) for host, port, sni in targets]
        if progress is None:
            reply = ("ok", scanner.run(endpoints))
        else:
            from certfleet.cli._scan_progress import progress_bar

            with progress_bar(progress) as bar:
                reply = ("ok", scanner.run(endpoints, bar))
    except Exception as exc:  # noqa: BLE001 - the child's outermost handler: the parent reports it
        reply = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(reply)
    _write_all(sys.stdout.fileno(), buffer.getbuffer())


def _write_all(fd: int, data: memoryview) -> None:
    """Every byte, with ``os.write``: after uvloop has run in this process, a large write
    through ``sys.stdout.buffer`` into a full pipe returned having written 64 KiB of it and
    dropped the rest (seen with a parent still importing; the pickle came out corrupt)."""
    os.set_blocking(fd, True)
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    # Through the module's own name: what the pickle refers to must exist in the parent.
    from certfleet.cli._scan_child import _child as child

    child()
    # The outcomes are written and nothing here needs cleaning up (the event loop and the
    # progress bar closed themselves; no file was written): exit now. The parent reads until
    # the pipe's end and waits for the exit status, so the interpreter's finalization (its
    # collections walking every object of asyncio, ssl and the scanner) would be on the
    # command's critical path: 15-20 ms after a 300-endpoint scan, strace shows (issue 11).
    sys.stderr.flush()
    os._exit(0)
