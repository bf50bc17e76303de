"""Agent trust against a real certfleet server and a real TLS man in the middle on loopback.

The proxy terminates TLS with a certificate of its choice and either answers itself or
forwards each request to the real server (it sees every byte the agent sends). Two attacks:
a proxy with its own root that adds that root to the CA bundle (issue 12, finding 1), and a
proxy presenting a certificate certfleet issued through the normal path for the server's own
names (finding 2). In both the token must never reach the proxy and must still work with the
real server afterwards."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from certfleet.agent import AgentState, enroll
from certfleet.agent.client import ServerClient
from certfleet.agent.errors import UntrustedServer
from certfleet.agent.trust import SERVER_CA_FILE
from certfleet.ca import build_root
from certfleet.x509 import KeyType, generate_private_key, load_certificates, to_pem
from tests.agent.peers import CertfleetServer, certfleet
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration

CA_PATH = b"/api/v1/agent/ca.pem"


def _read_request(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _close_after(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


@dataclass
class TlsProxy:
    """Presents ``chain_pem``/``key_pem``; answers GET ca.pem with ``bundle`` when set; sends
    everything else to ``upstream`` (or answers 404). ``requests`` holds every request."""

    workdir: Path
    chain_pem: bytes
    key_pem: bytes
    bundle: bytes | None = None
    upstream: int | None = None
    requests: list[bytes] = field(default_factory=list)
    handshakes_failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "proxy.pem").write_bytes(self.chain_pem)
        (self.workdir / "proxy.key").write_bytes(self.key_pem)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.workdir / "proxy.pem", self.workdir / "proxy.key")
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.handshakes_failed += 1
            return
        with conn:
            request = _read_request(conn)
            if not request:
                return
            with self._lock:
                self.requests.append(request)
            if self.bundle is not None and request.startswith(b"GET " + CA_PATH):
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(self.bundle)}\r\nConnection: close\r\n\r\n"
                conn.sendall(head.encode() + self.bundle)
            elif self.upstream is not None:
                conn.sendall(self._forward(request))
            else:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _forward(self, request: bytes) -> bytes:
        assert self.upstream is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", self.upstream)) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1") as upstream,
        ):
            upstream.sendall(_close_after(request))
            response = b""
            while chunk := upstream.recv(65536):
                response += chunk
        return response

    def saw(self, needle: bytes) -> bool:
        with self._lock:
            return any(needle in request for request in self.requests)

    def methods(self) -> set[bytes]:
        with self._lock:
            return {request.split(b" ", 1)[0] for request in self.requests}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Mallory:
    """A root of her own and a certificate for 127.0.0.1 it signs."""

    root: x509.Certificate
    chain_pem: bytes
    key_pem: bytes


def _mallory() -> Mallory:
    root_key = generate_private_key(KeyType.EC_P256)
    now = dt.datetime.now(dt.UTC)
    root = build_root("certfleet", root_key, now)  # the real root's name: only the keys differ
    key = generate_private_key(KeyType.EC_P256)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Mallory(root, to_pem([leaf, root]).encode(), key_pem)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertfleetServer]:
    server = CertfleetServer(one_worker(tmp_path_factory.mktemp("trust") / "data"))
    server.start()
    yield server
    server.stop()


def _root_pem(server: CertfleetServer) -> str:
    return httpx.get(f"http://127.0.0.1:{server.http_port}/ca/root.pem", trust_env=False).text


def _bundle(server: CertfleetServer) -> bytes:
    context = ssl.create_default_context(cadata=_root_pem(server))
    return httpx.get(f"{server.https}{CA_PATH.decode()}", verify=context, trust_env=False).content


def _normal_path_certificate(server: CertfleetServer) -> tuple[bytes, bytes]:
    """A tls-server certificate for the server's own names from the REST API (an admin
    token: any caller allowed 127.0.0.1 could do the same, or an ACME account)."""
    context = ssl.create_default_context(cadata=_root_pem(server))
    response = httpx.post(
        f"{server.https}/api/v1/certificates",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        json={"key_type": "ec-p256", "sans": ["127.0.0.1", "localhost"], "profile": "tls-server"},
        verify=context,
        trust_env=False,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["fullchain_pem"].encode(), body["private_key_pem"].encode()


def _assert_token_never_left(proxy: TlsProxy, token: str) -> None:
    assert not proxy.saw(token.encode())
    assert b"POST" not in proxy.methods()


@pytest.mark.parametrize("forward", [False, True], ids=["answers-itself", "forwards-to-the-real-server"])
def test_a_man_in_the_middle_adding_his_root_to_the_bundle_never_gets_the_token(
    server: CertfleetServer, tmp_path: Path, forward: bool
) -> None:
    mallory = _mallory()
    poisoned = _bundle(server) + to_pem([mallory.root]).encode()
    proxy = TlsProxy(
        tmp_path / "proxy",
        mallory.chain_pem,
        mallory.key_pem,
        poisoned,
        server.https_port if forward else None,
    )
    token = server.join_token("mitm.example.test")
    state = AgentState(tmp_path / "state")
    try:
        with pytest.raises(UntrustedServer, match="the pinned root did not sign"):
            enroll(proxy.url, token, server.root_fingerprint(), state)
    finally:
        proxy.close()

    _assert_token_never_left(proxy, token)
    assert proxy.requests  # it did answer the bundle request: the refusal is the agent's
    assert not (state.root / "agent.json").exists() and not state.identity_file.exists()
    assert enroll(server.https, token, server.root_fingerprint(), state).host == "mitm.example.test"


def test_the_cli_refuses_a_poisoned_bundle_in_one_line(server: CertfleetServer, tmp_path: Path) -> None:
    mallory = _mallory()
    poisoned = _bundle(server) + to_pem([mallory.root]).encode()
    proxy = TlsProxy(tmp_path / "proxy", mallory.chain_pem, mallory.key_pem, poisoned, server.https_port)
    token = server.join_token("cli.example.test")
    try:
        result = certfleet(
            "agent", "enroll", "--server", proxy.url, "--token", token,
            "--ca-fingerprint", server.root_fingerprint(), "--state-dir", str(tmp_path / "state"),
            check=False,
        )  # fmt: skip
    finally:
        proxy.close()

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "the pinned root did not sign" in result.stderr
    _assert_token_never_left(proxy, token)


def test_a_certificate_issued_for_the_servers_names_cannot_impersonate_it_at_enrolment(
    server: CertfleetServer, tmp_path: Path
) -> None:
    # The bundle is the real one; the proxy forwards everything to the real server, so
    # trusting its certificate would enrol this agent through it.
    chain_pem, key_pem = _normal_path_certificate(server)
    proxy = TlsProxy(tmp_path / "proxy", chain_pem, key_pem, upstream=server.https_port)
    token = server.join_token("impostor.example.test")
    state = AgentState(tmp_path / "state")
    try:
        with pytest.raises(UntrustedServer, match="server-identity CA"):
            enroll(proxy.url, token, server.root_fingerprint(), state)
    finally:
        proxy.close()

    _assert_token_never_left(proxy, token)
    assert proxy.handshakes_failed >= 1
    assert enroll(server.https, token, server.root_fingerprint(), state).host == "impostor.example.test"


def test_an_enrolled_agent_refuses_an_impostor_and_accepts_the_real_server(
    server: CertfleetServer, tmp_path: Path
) -> None:
    state = AgentState(tmp_path / "state")
    enroll(server.https, server.join_token("client.example.test"), server.root_fingerprint(), state)
    chain_pem, key_pem = _normal_path_certificate(server)
    proxy = TlsProxy(tmp_path / "proxy", chain_pem, key_pem, upstream=server.https_port)
    impostor = ServerClient(proxy.url, state.ca_file, state.identity_file)
    try:
        with pytest.raises(UntrustedServer, match="server-identity CA"):
            impostor.instructions()
    finally:
        impostor.close()
        proxy.close()
    assert not proxy.saw(b"/api/v1/agent/instructions")

    real = ServerClient(server.https, state.ca_file, state.identity_file)
    try:
        assert real.instructions()["host"] == "client.example.test"
    finally:
        real.close()


def test_an_agent_enrolled_before_server_identity_cas_learns_one_and_keeps_working(
    server: CertfleetServer, tmp_path: Path
) -> None:
    state = AgentState(tmp_path / "state")
    enroll(server.https, server.join_token("old.example.test"), server.root_fingerprint(), state)
    # The state an earlier version left: ca.pem with the root first, no server-ca.pem.
    (state.root / SERVER_CA_FILE).unlink()

    client = ServerClient(server.https, state.ca_file, state.identity_file)
    try:
        assert client.instructions()["host"] == "old.example.test"
    finally:
        client.close()

    learned = load_certificates((state.root / SERVER_CA_FILE).read_bytes())
    assert len(learned) == 1 and "Server Identity CA" in learned[0].subject.rfc4514_string()
