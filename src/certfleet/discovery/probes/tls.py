"""The TLS probe: one connection, one handshake, the whole presented chain.

Why Python's ``ssl`` and this particular call: the chain must be the one the server *sent*,
intermediates included and trusted or not, so verification is off (``CERT_NONE``) and the
chain is read with ``get_unverified_chain()``. That call is public on ``SSLObject`` from
Python 3.13; on 3.10-3.12 the same C method exists on the private ``_sslobj`` (CPython's own
``ssl.py`` calls it there). We prefer the public method, fall back to the private one, and as
a last resort report the leaf alone (``getpeercert(binary_form=True)``) rather than fail.
pyOpenSSL would give the chain too, but is a second TLS stack to install for one accessor,
and parsing the Certificate message ourselves is impossible under TLS 1.3 (it is encrypted).

The client accepts everything a server may present (TLS 1.0 up, ``@SECLEVEL=0``): OpenSSL 3
refuses by default RSA-1024 keys and SHA-1 signatures *during the handshake*, which would hide
exactly the certificates discovery exists to find.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import errno
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from certfleet.discovery._lenient import lenient_parsing
from certfleet.discovery.outcomes import HstsCheck, NetStatus, TlsObservation
from certfleet.discovery.probes.http import fetch_hsts
from certfleet.discovery.targets import Endpoint

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "MAX_CHAIN_CERTIFICATES",
    "ChainReader",
    "ProbeFailure",
    "client_context",
    "malformed_chain",
    "probe_tls",
    "read_chain",
]

# A real chain has 2-4 certificates; OpenSSL already caps the message at 100 KiB.
MAX_CHAIN_CERTIFICATES = 32
_DER: int = getattr(_ssl, "ENCODING_DER", 2)  # what _ssl.Certificate.public_bytes needs


class ProbeFailure(Exception):
    """A probe that could not complete: carries the outcome status and a reason."""

    def __init__(self, status: NetStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext:
    """One shared client context (building one costs milliseconds; sharing is thread-safe)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    # SECLEVEL=0 admits TLS 1.0/1.1, RSA-1024 and SHA-1 server signatures (see module doc).
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
    ctx.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def _presented_chain(obj: ssl.SSLObject) -> list[bytes]:
    public = getattr(obj, "get_unverified_chain", None)
    private = getattr(getattr(obj, "_sslobj", None), "get_unverified_chain", None)
    getter = public or private
    if getter is not None:
        items = getter() or []
        return [i if isinstance(i, bytes) else i.public_bytes(_DER) for i in items[:MAX_CHAIN_CERTIFICATES]]
    leaf = obj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _failure(exc: BaseException, endpoint: Endpoint, timeout_seconds: float) -> ProbeFailure:
    if isinstance(exc, TimeoutError):
        return ProbeFailure(NetStatus.TIMEOUT, f"timed out after {timeout_seconds:g} s")
    if isinstance(exc, socket.gaierror):
        return ProbeFailure(NetStatus.DNS_ERROR, f"cannot resolve {endpoint.host}: {exc.strerror}")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(NetStatus.REFUSED, "connection refused")
    if isinstance(exc, ssl.SSLError):
        detail = exc.reason or exc.strerror or str(exc)
        return ProbeFailure(
            NetStatus.TLS_ERROR, f"TLS handshake failed: {str(detail).lower().replace('_', ' ')}"
        )
    if isinstance(exc, ConnectionResetError | asyncio.IncompleteReadError | EOFError | BrokenPipeError):
        return ProbeFailure(NetStatus.TLS_ERROR, "the server closed the connection during the handshake")
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
            return ProbeFailure(NetStatus.UNREACHABLE, exc.strerror or "unreachable")
        return ProbeFailure(NetStatus.ERROR, exc.strerror or str(exc) or type(exc).__name__)
    return ProbeFailure(NetStatus.ERROR, f"{type(exc).__name__}: {exc}")


Connector = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
# The presented certificates (DER, leaf first) -> the observation's chain; raises ProbeFailure.
ChainReader = Callable[[Sequence[bytes]], tuple[Any, ...]]


def malformed_chain(exc: ValueError) -> ProbeFailure:
    """What a chain that does not parse makes of the endpoint's outcome."""
    return ProbeFailure(NetStatus.TLS_ERROR, f"the server presented a malformed certificate: {exc}")


def read_chain(ders: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """The presented chain parsed; cryptography is imported on first use (the CLI's scanner
    process never parses a certificate: see ``certfleet.cli._scan_child``)."""
    from cryptography.x509 import load_der_x509_certificate

    try:
        with lenient_parsing():
            return tuple(load_der_x509_certificate(der) for der in ders)
    except ValueError as exc:
        raise malformed_chain(exc) from None


async def probe_tls(
    endpoint: Endpoint,
    *,
    timeout_seconds: float,
    http_checks: bool = False,
    connect: Connector = asyncio.open_connection,
    chain_reader: ChainReader = read_chain,
) -> TlsObservation:
    """Connect, handshake and read the presented chain within ``timeout_seconds`` (name
    resolution, TCP connect and the whole handshake); with ``http_checks`` ask the same
    connection for HSTS within a second deadline. Raises :class:`ProbeFailure`.
    ``chain_reader`` turns the presented DER into the observation's chain (default:
    :func:`read_chain`; the CLI's scanner process defers the parsing to the command)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_seconds):
            reader, writer = await connect(
                endpoint.host,
                endpoint.port,
                ssl=client_context(),
                # "" sends no SNI: RFC 6066 section 3 forbids literal addresses in it.
                server_hostname=endpoint.sni or "",
                ssl_handshake_timeout=timeout_seconds + 1,
            )
        obj = writer.get_extra_info("ssl_object")
        if obj is None:  # pragma: no cover - asyncio always sets it for an SSL transport
            raise ProbeFailure(NetStatus.ERROR, "no TLS session")
        ders = _presented_chain(obj)
        if not ders:
            raise ProbeFailure(NetStatus.TLS_ERROR, "the server presented no certificate")
        chain = chain_reader(ders)
        cipher = obj.cipher()
        peer = writer.get_extra_info("peername")
        hsts: HstsCheck | None = None
        if http_checks:
            try:
                async with asyncio.timeout(timeout_seconds):
                    hsts = await fetch_hsts(reader, writer, endpoint.name, endpoint.port)
            except (TimeoutError, OSError, ssl.SSLError, EOFError):
                hsts = HstsCheck(answered=False)
        return TlsObservation(
            peer_address=str(peer[0]) if peer else endpoint.host,
            tls_version=obj.version() or "unknown",
            cipher=cipher[0] if cipher else "unknown",
            sni=endpoint.sni,
            chain=chain,
            hsts=hsts,
        )
    except ProbeFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes this endpoint's outcome
        raise _failure(exc, endpoint, timeout_seconds) from None
    finally:
        if writer is not None:
            # abort(), not close(): a clean TLS shutdown waits for the peer, and a hostile
            # peer would hold the socket for asyncio's 30 s shutdown timeout.
            with contextlib.suppress(Exception):
                writer.transport.abort()
