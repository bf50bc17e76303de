"""A SPIFFE workload for the tests, using only py-spiffe and the Workload API (the socket
comes from SPIFFE_ENDPOINT_SOCKET, as for any workload), run as its own process, often under
another uid with setpriv. One JSON line per result on stdout.

    python -m tests.agent.workload.workload MODE ARGS...

    x509                  one X509-SVID (or the error)
    stream N              the first N sets a FetchX509SVID stream pushes (or the error)
    token AUDIENCE        one JWT-SVID (the token itself)
    rotation              X509Source: the first SVID, then the next one it is pushed
    jwt AUDIENCE          JwtSource: a JWT-SVID, validated with the JWT bundle and by the agent
    serve PEER            mTLS server with its SVID (prints its port); requires the client to be PEER
    connect PORT PEER     mTLS client with its SVID; requires the server to be PEER
"""

from __future__ import annotations

import json
import queue
import socket
import ssl
import sys
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from spiffe import JwtSource, JwtSvid, SpiffeId, WorkloadApiClient, X509Source, X509Svid
from spiffe.errors import PySpiffeError

TIMEOUT = 120


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _svid(source: X509Source) -> X509Svid:
    return source.get_x509_context().default_svid


def rotation() -> None:
    with X509Source(timeout_in_seconds=TIMEOUT) as source:
        first = _svid(source)
        say(spiffe_id=str(first.spiffe_id), serial=first.leaf.serial_number)
        rotated = threading.Event()
        source.subscribe_for_updates(rotated.set)
        while _svid(source).leaf.serial_number == first.leaf.serial_number:
            rotated.wait(TIMEOUT * 3)
            rotated.clear()
        second = _svid(source)
        say(spiffe_id=str(second.spiffe_id), serial=second.leaf.serial_number)


def jwt(audience: str) -> None:
    with JwtSource(timeout_in_seconds=TIMEOUT) as source:
        token = source.fetch_svid({audience})
        bundle = source.get_bundle_for_trust_domain(token.spiffe_id.trust_domain)
        assert bundle is not None
        local = JwtSvid.parse_and_validate(token.token, bundle, {audience})
    client = WorkloadApiClient(default_timeout=TIMEOUT)
    try:
        remote = client.validate_jwt_svid(token.token, audience)
        try:
            client.validate_jwt_svid(token.token, "someone-else")
            other = "accepted"
        except PySpiffeError as exc:
            other = str(exc)
    finally:
        client.close()
    say(spiffe_id=str(token.spiffe_id), local=str(local.spiffe_id), remote=str(remote.spiffe_id), other=other)


def _tls(source: X509Source, server: bool) -> ssl.SSLContext:
    """A TLS context from what the Workload API gave: the SVID, its key and the bundle.
    SPIFFE authorises by SPIFFE ID, not host name: the peer's ID is checked after the
    handshake."""
    private = Path(tempfile.mkdtemp())  # 0700, this workload's own
    svid = _svid(source)
    svid.save(str(private / "svid.pem"), str(private / "svid.key"), Encoding.PEM)
    bundle = source.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    assert bundle is not None
    roots = b"".join(c.public_bytes(Encoding.PEM) for c in bundle.x509_authorities)
    (private / "bundle.pem").write_bytes(roots)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(private / "bundle.pem")
    context.load_cert_chain(private / "svid.pem", private / "svid.key")
    return context


def _peer_id(conn: ssl.SSLSocket) -> str:
    der = conn.getpeercert(binary_form=True)
    assert der is not None
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    (uri,) = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return str(SpiffeId(uri))


def serve(peer: str) -> None:
    with X509Source(timeout_in_seconds=TIMEOUT) as source:
        context = _tls(source, server=True)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(TIMEOUT)
        say(port=listener.getsockname()[1])
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as conn:
            client = _peer_id(conn)
            if client != peer:
                conn.sendall(b"refused\n")
                say(error=f"unexpected client {client}")
                return
            message = conn.recv(1024).decode().strip()
            conn.sendall(f"hello {client}, I am {_svid(source).spiffe_id}\n".encode())
        say(me=str(_svid(source).spiffe_id), client=client, received=message)


def connect(port: str, peer: str) -> None:
    with X509Source(timeout_in_seconds=TIMEOUT) as source:
        context = _tls(source, server=False)
        with (
            socket.create_connection(("127.0.0.1", int(port)), timeout=TIMEOUT) as raw,
            context.wrap_socket(raw) as conn,
        ):
            server = _peer_id(conn)
            if server != peer:
                say(error=f"unexpected server {server}")
                return
            conn.sendall(f"ping from {_svid(source).spiffe_id}\n".encode())
            answer = conn.makefile().readline().strip()
        say(me=str(_svid(source).spiffe_id), server=server, answer=answer)


def one_x509() -> None:
    client = WorkloadApiClient(default_timeout=TIMEOUT)
    try:
        svid = client.fetch_x509_svid()
        say(spiffe_id=str(svid.spiffe_id), serial=svid.leaf.serial_number)
    except PySpiffeError as exc:
        say(error=str(exc))
    finally:
        client.close()


def stream(count: str) -> None:
    client = WorkloadApiClient(default_timeout=TIMEOUT)
    updates: queue.Queue[object] = queue.Queue()
    handle = client.stream_x509_contexts(updates.put, updates.put, retry_connect=False)
    try:
        for _ in range(int(count)):
            update = updates.get(timeout=TIMEOUT)
            if isinstance(update, Exception):
                say(error=str(update))
                return
            svid = update.default_svid  # type: ignore[attr-defined]
            every = {str(s.spiffe_id): s.leaf.serial_number for s in update.x509_svids}  # type: ignore[attr-defined]
            say(spiffe_id=str(svid.spiffe_id), serial=svid.leaf.serial_number, all=every)
    finally:
        handle.cancel()
        client.close()


def token(audience: str) -> None:
    client = WorkloadApiClient(default_timeout=TIMEOUT)
    try:
        svid = client.fetch_jwt_svid({audience})
        say(spiffe_id=str(svid.spiffe_id), token=svid.token)
    except PySpiffeError as exc:
        say(error=str(exc))
    finally:
        client.close()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    modes = {"x509": one_x509, "stream": stream, "token": token, "rotation": rotation, "jwt": jwt}
    modes.update(serve=serve, connect=connect)
    modes[mode](*args)
