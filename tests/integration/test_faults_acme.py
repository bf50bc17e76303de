"""A real ``certfleet serve`` is killed with SIGKILL (a test-only fault point) while an ACME
finalize is signing: the order was committed ``processing``. After a restart on the same
data the order does not stay processing for ever: the ``acme.stalled`` job ends it invalid
with a serverInternal error saying why, and the serial the killed finalize signed with is
reserved, so revocable by serial."""

from __future__ import annotations

import base64
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from certfleet.protocols.acme.recovery import ORDER_DETAIL
from tests.integration.faults_support import TestServer, ledger_state, prepare_data_dir
from tests.protocols.acme.peers import ChallTestSrv, Http01Responder
from tests.protocols.acme.raw import RawAcme, csr_der, key_authorization

pytestmark = pytest.mark.integration

URN = "urn:ietf:params:acme:error:"


def _get(acme: RawAcme, account: Any, url: str) -> dict[str, Any]:
    response = acme.post_as_get(account, url)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _poll(what: str, check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while (found := check()) is None:
        assert time.monotonic() < deadline, what
        time.sleep(0.2)  # polling the order as an ACME client does
    return found


def test_an_order_finalizing_when_the_server_is_killed_ends_invalid_after_restart(tmp_path: Path) -> None:
    dns, http01 = ChallTestSrv(), Http01Responder()
    data_dir = tmp_path / "data"
    _, url = prepare_data_dir(data_dir, None)
    # Processing for a second is stalled here (five minutes by default): the test need not wait
    (data_dir / "config.toml").write_text("[acme]\nstalled_after_seconds = 1\n")
    acme_args = ["--acme-resolver", f"127.0.0.1:{dns.dns_port}", "--acme-http01-port", str(http01.port)]
    server = TestServer(data_dir, extra=acme_args)
    try:
        # Given an order made ready, on a server armed to die once it has signed
        # (the first signing is the listener's own certificate, at this first start)
        server.env = {"CERTFLEET_TESTING": "1", "CERTFLEET_TEST_FAULTS": "issuance.after_signing=kill@2"}
        server.start()
        root = server.root_pem(tmp_path / "root.pem")
        http = httpx.Client(verify=ssl.create_default_context(cafile=str(root)), timeout=60)
        acme = RawAcme(f"{server.https}/acme/directory", http)
        account = acme.new_account()
        names = ["killed-finalizing.example.test"]
        created = acme.new_order(account, names)
        assert created.status_code == 201, created.text
        order_url, order = created.headers["Location"], created.json()
        authz = _get(acme, account, order["authorizations"][0])
        challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
        http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
        assert acme.post(challenge["url"], {}, account.key, kid=account.kid).status_code == 200
        _poll(
            "the order never became ready",
            lambda: _get(acme, account, order_url).get("status") == "ready" or None,
        )
        # When the finalize is killed after signing
        csr = base64.urlsafe_b64encode(csr_der(names)).rstrip(b"=").decode()
        with pytest.raises(httpx.TransportError):
            acme.post(order["finalize"], {"csr": csr}, account.key, kid=account.kid)
        assert server.process is not None and server.process.wait(timeout=30) == -signal.SIGKILL
        reserved = ledger_state(url).reserved_only
        assert len(reserved) == 1  # the serial the dead finalize signed with
        # Then, restarted on the same data, the order is resolved rather than left processing
        server.env = {}
        server.start()
        acme = RawAcme(f"{server.https}/acme/directory", http)

        def settled() -> dict[str, Any] | None:
            found = _get(acme, account, order_url)
            return found if found["status"] != "processing" else None

        final = _poll("the order stayed processing after the restart", settled)
        assert final["status"] == "invalid"
        assert final["error"]["type"] == URN + "serverInternal"
        assert final["error"]["detail"] == ORDER_DETAIL
        # And what was signed for it stays revocable: its serial is still reserved
        assert ledger_state(url).reserved_only == reserved
    finally:
        server.ensure_stopped()
        http01.stop()
        dns.stop()
