"""Real receivers on loopback: an HTTP server that records what it is sent, and an SMTP
server (aiosmtpd) that offers STARTTLS with a certificate certfleet issued."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.x509 import KeyType, generate_private_key, to_pem


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Answers every POST with ``status`` (plus ``headers``) and records it."""

    def __init__(self, port: int = 0, status: int = 204) -> None:
        self.status = status
        self.headers: dict[str, str] = {}
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, extra = receiver.status, dict(receiver.headers)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    tls: bool
    login: bytes | None


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.content, policy=policy.default),
                session.ssl is not None,
                login,
            )
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on its own event loop thread and an ephemeral port. With ``tls`` it offers
    STARTTLS and refuses mail before it; with ``users`` it offers AUTH (after TLS only)."""

    def __init__(self, tls: ssl.SSLContext | None = None, users: dict[bytes, bytes] | None = None) -> None:
        self.handler = _Handler()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and users is not None
                and users.get(data.login) == data.password
            )
            return AuthResult(success=ok, handled=False, auth_data=data)

        def factory() -> SMTP:
            return SMTP(
                self.handler,
                hostname="smtp.example.test",
                tls_context=tls,
                require_starttls=tls is not None,
                authenticator=authenticate if users else None,
                auth_require_tls=True,
            )

        create = self._loop.create_server(factory, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(create, self._loop).result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def mails(self) -> list[Mail]:
        return list(self.handler.mails)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def server_tls(platform: Platform, directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a certificate certfleet issues for 127.0.0.1, and the root
    CA file a client must trust for it."""
    key = generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest("tls-server", key.public_key(), ("127.0.0.1", "localhost"))
    result = platform.issuance.issue(request, actor="test", private_key=key)
    directory.mkdir(parents=True, exist_ok=True)
    chain = directory / "smtp-fullchain.pem"
    chain.write_text(to_pem(result.issued.fullchain))
    key_file = directory / "smtp-key.pem"
    key_pem = result.private_key_pem()
    assert key_pem is not None
    key_file.write_bytes(key_pem)
    root = directory / "root.pem"
    root.write_text(to_pem([platform.authorities.root().certificate]))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    return context, root
