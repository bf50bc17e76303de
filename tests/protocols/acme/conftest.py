"""An in-process certfleet HTTP app (uvicorn on a thread) with the ACME router, a FakeClock,
pebble-challtestsrv as its DNS server and an http-01 responder: shared per module."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import inspect, text

from certfleet.api import create_api_app
from certfleet.app import Platform
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.ports import free_port
from tests.protocols.acme.peers import ChallTestSrv, Http01Responder, wait_for
from tests.protocols.acme.raw import Account, RawAcme, csr_der, key_authorization

# Tables whose content is protocol state; nonces and the audit log are excluded on purpose
# (every request consumes and issues nonces; refusals are audited).
_STATE_EXCLUDED = {"acme_nonces", "audit_log", "audit_head", "alembic_version"}


@pytest.fixture(scope="session")
def challtestsrv() -> Iterator[ChallTestSrv]:
    server = ChallTestSrv()
    yield server
    server.stop()


@dataclass
class AcmeHarness:
    platform: Platform
    clock: FakeClock
    base_url: str
    client: RawAcme
    http01: Http01Responder
    dns: ChallTestSrv
    tlsalpn_port: int
    data_dir: Path

    @property
    def directory(self) -> dict[str, Any]:
        return self.client.directory

    def snapshot(self) -> str:
        """A digest of every stored row that is protocol state."""
        engine = self.platform.database.engine
        digest = hashlib.sha256()
        with engine.connect() as conn:
            for table in sorted(inspect(engine).get_table_names()):
                if table in _STATE_EXCLUDED:
                    continue
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()
                digest.update(table.encode())
                for row in sorted(repr(tuple(r)) for r in rows):
                    digest.update(row.encode())
        return digest.hexdigest()

    def count(self, table: str) -> int:
        with self.platform.database.engine.connect() as conn:
            return int(conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())

    def get(self, account: Account, url: str) -> dict[str, Any]:
        response = self.client.post_as_get(account, url)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_authz(self, account: Account, authz_url: str) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            authz = self.get(account, authz_url)
            return authz if authz["status"] not in ("pending",) or _failed(authz) else None

        result: dict[str, Any] = wait_for(settled, what=f"authorization {authz_url}")
        return result

    def answer(
        self, account: Account, authz_url: str, kind: str = "http-01", serve: bool = True
    ) -> dict[str, Any]:
        """Answer one challenge of an authorization and wait for the outcome."""
        authz = self.get(account, authz_url)
        challenge = next(c for c in authz["challenges"] if c["type"] == kind)
        if kind == "http-01" and serve:
            self.http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
        response = self.client.post(challenge["url"], {}, account.key, kid=account.kid)
        assert response.status_code == 200, response.text
        return self.wait_authz(account, authz_url)

    def ready_order(self, account: Account, names: list[str]) -> tuple[str, dict[str, Any]]:
        response = self.client.new_order(account, names)
        assert response.status_code == 201, response.text
        order_url = response.headers["Location"]
        for authz_url in response.json()["authorizations"]:
            authz = self.get(account, authz_url)
            if authz["status"] != "valid":
                assert self.answer(account, authz_url)["status"] == "valid"
        order = self.get(account, order_url)
        assert order["status"] == "ready", order
        return order_url, order

    def finalize(self, account: Account, order: dict[str, Any], names: list[str], key: Any = None) -> Any:
        return self.client.post(
            order["finalize"], {"csr": _b64(csr_der(names, key))}, account.key, kid=account.kid
        )


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _failed(authz: dict[str, Any]) -> bool:
    return any(c["status"] == "invalid" for c in authz["challenges"])


def _serve(platform: Platform) -> tuple[uvicorn.Server, threading.Thread, int]:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it every kept-alive response stalls 40 ms on the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(create_api_app(platform), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn start")
    return server, thread, port


def build_harness(
    tmp: Path, dns: ChallTestSrv, *, extra_config: str = "", db_url: str | None = None
) -> Iterator[AcmeHarness]:
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    http01 = Http01Responder()
    tlsalpn_port = free_port()
    (data_dir / "config.toml").write_text(
        "[acme]\n"
        f'resolver = "{dns.resolver}"\n'
        f"http01_port = {http01.port}\n"
        f"tlsalpn01_port = {tlsalpn_port}\n"
        "validation_timeout_seconds = 3\n" + extra_config
    )
    clock = FakeClock(__import__("datetime").datetime.now(__import__("datetime").UTC).replace(microsecond=0))
    platform = make_platform(data_dir, db_url or f"sqlite:///{data_dir / 'certfleet.db'}", clock)
    platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    server, thread, port = _serve(platform)
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(timeout=30)
    try:
        yield AcmeHarness(
            platform,
            clock,
            base,
            RawAcme(f"{base}/acme/directory", http),
            http01,
            dns,
            tlsalpn_port,
            data_dir,
        )
    finally:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)
        http01.stop()
        platform.close()


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, challtestsrv: ChallTestSrv) -> Iterator[AcmeHarness]:
    yield from build_harness(tmp_path_factory.mktemp("acme"), challtestsrv)
