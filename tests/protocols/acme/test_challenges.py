"""The challenge validators on their own, against real listeners on 127.0.0.1 and a
hand-written resolver: a failure never quotes what the target sent, and a denied address is
never connected to (the metadata address is denied without any configuration)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from certfleet.protocols.acme import AcmeProblem
from certfleet.protocols.acme.challenges import Dns01Validator, Http01Validator, TlsAlpn01Validator
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.networks import NetworkPolicy
from certfleet.protocols.acme.resolver import CaaRecord
from tests.ports import free_port
from tests.protocols.acme.peers import tls_alpn_certificate, tls_alpn_responder

MARKER = "INTERNAL-SECRET-7f3a"  # what a hostile target would like certfleet to reflect
KEY_AUTH = "token123.thumbprint456"


class StubResolver:
    """Answers every name with ``addresses`` and every TXT look-up with ``txt_values``."""

    def __init__(self, addresses: Sequence[str], txt_values: Sequence[str] = ()) -> None:
        self._addresses = list(addresses)
        self._txt = list(txt_values)
        self.looked_up: list[str] = []

    def addresses(self, name: str) -> Sequence[str]:
        self.looked_up.append(name)
        return self._addresses

    def txt(self, name: str) -> Sequence[str]:
        return self._txt

    def caa(self, name: str) -> Sequence[CaaRecord] | None:
        return []


@contextmanager
def raw_responder(reply: bytes) -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that reads a request and answers ``reply`` verbatim."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=5)


@contextmanager
def silent_listener() -> Iterator[tuple[int, socket.socket]]:
    """A listening socket nobody accepts on: a connection attempt would wait in its backlog."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield int(listener.getsockname()[1]), listener
    finally:
        listener.close()


def _nobody_connected(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def _http01(resolver: StubResolver, port: int, networks: NetworkPolicy | None = None) -> Http01Validator:
    return Http01Validator(resolver, port, 3.0, networks or NetworkPolicy())


def _failure(validate: object) -> AcmeProblem:
    assert callable(validate)
    with pytest.raises(AcmeProblem) as caught:
        validate()
    return caught.value


# -- no reflection of the target's content ----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (f"HTTP/1.1 200 OK\r\nContent-Length: {len(MARKER)}\r\n\r\n{MARKER}", "incorrectResponse"),
        (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(MARKER) + 9}\r\n\r\ntoken123.{MARKER}",
            "incorrectResponse",
        ),
        (f"{MARKER} is not HTTP\r\n\r\n", "connection"),
        (f"HTTP/1.1 200 OK\r\nX-A: 1\r\n{MARKER} not a header\r\n\r\n", "connection"),
        (f"HTTP/1.1 404 {MARKER}\r\nContent-Length: {len(MARKER)}\r\n\r\n{MARKER}", "incorrectResponse"),
    ],
    ids=["wrong-body", "other-thumbprint", "bad-status-line", "bad-header", "reason-phrase"],
)
def test_http01_failure_never_quotes_the_response(reply: str, kind: str) -> None:
    with raw_responder(reply.encode()) as port:
        problem = _failure(
            lambda: _http01(StubResolver(["127.0.0.1"]), port).validate(
                Identifier("dns", "reflect.example.test"), "token123", KEY_AUTH
            )
        )
    assert problem.kind == kind
    assert MARKER not in problem.detail and MARKER.lower() not in problem.detail.lower()


def test_http01_wrong_body_says_what_was_wrong() -> None:
    body = f"{MARKER}\n"
    reply = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    with raw_responder(reply.encode()) as port:
        problem = _failure(
            lambda: _http01(StubResolver(["127.0.0.1"]), port).validate(
                Identifier("dns", "reflect.example.test"), "token123", KEY_AUTH
            )
        )
    assert f"{len(body)} bytes" in problem.detail
    assert "did not match" in problem.detail


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (f"HTTP/1.1 200 OK\r\nContent-Length: {len(KEY_AUTH) + 1}\r\n\r\n{KEY_AUTH}\n", None),
        (f"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{KEY_AUTH}", None),  # body until close
        (f"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{KEY_AUTH}", None),
        (f"HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n{'x' * 30000}", "incorrectResponse"),
        (
            "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n",
            "incorrectResponse",
        ),
        ("", "connection"),  # closed without a response
        ("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", "connection"),  # closed mid-body
    ],
    ids=["length", "until-close", "continue", "huge", "redirect-not-followed", "no-response", "truncated"],
)
def test_http01_reads_one_http11_response(reply: str, kind: str | None) -> None:
    with raw_responder(reply.encode()) as port:
        validate = _http01(StubResolver(["127.0.0.1"]), port).validate
        if kind is None:
            validate(Identifier("dns", "fetch.example.test"), "token123", KEY_AUTH)
        else:
            assert (
                _failure(lambda: validate(Identifier("dns", "fetch.example.test"), "token123", KEY_AUTH)).kind
                == kind
            )


def test_tls_alpn01_failure_never_quotes_the_certificate(tmp_path: Path) -> None:
    port = free_port()
    cert_pem, key_pem = tls_alpn_certificate(f"{MARKER.lower()}.example.test", KEY_AUTH)
    with tls_alpn_responder(port, cert_pem, key_pem, tmp_path):
        problem = _failure(
            lambda: TlsAlpn01Validator(StubResolver(["127.0.0.1"]), port, 3.0, NetworkPolicy()).validate(
                Identifier("dns", "alpn.example.test"), "token123", KEY_AUTH
            )
        )
    assert problem.kind == "incorrectResponse"
    assert MARKER.lower() not in problem.detail.lower()


def test_dns01_failure_never_quotes_the_txt_values() -> None:
    resolver = StubResolver([], txt_values=[MARKER, f"{MARKER}-2"])
    problem = _failure(
        lambda: Dns01Validator(resolver).validate(Identifier("dns", "txt.example.test"), "token123", KEY_AUTH)
    )
    assert problem.kind == "incorrectResponse"
    assert MARKER not in problem.detail
    assert "(2)" in problem.detail


# -- denied networks ------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "0.0.0.0"])
def test_link_local_and_metadata_addresses_are_denied_by_default(address: str) -> None:
    # A name resolving to the cloud metadata service: no configuration needed to refuse it.
    resolver = StubResolver([address])
    identifier = Identifier("dns", "metadata.example.test")
    for validator in (_http01(resolver, 80), TlsAlpn01Validator(resolver, 443, 3.0, NetworkPolicy())):
        problem = _failure(lambda v=validator: v.validate(identifier, "token123", KEY_AUTH))  # type: ignore[misc]
        assert problem.kind == "connection"
        assert "denied network" in problem.detail and address in problem.detail


def test_an_ip_identifier_in_a_denied_network_is_not_contacted() -> None:
    problem = _failure(
        lambda: _http01(StubResolver([]), 80).validate(Identifier("ip", "169.254.169.254"), "t", KEY_AUTH)
    )
    assert problem.kind == "connection" and "169.254.0.0/16" in problem.detail


def test_loopback_is_allowed_by_default() -> None:
    body = KEY_AUTH
    reply = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    with raw_responder(reply.encode()) as port:
        _http01(StubResolver(["127.0.0.1"]), port).validate(
            Identifier("dns", "ok.example.test"), "token123", KEY_AUTH
        )


@pytest.mark.parametrize("kind", ["http-01", "tls-alpn-01"])
def test_a_configured_denied_network_is_never_connected_to(kind: str) -> None:
    import ipaddress

    networks = NetworkPolicy([ipaddress.ip_network("127.0.0.0/8")])
    with silent_listener() as (port, listener):
        resolver = StubResolver(["127.0.0.1"])
        validator = (
            _http01(resolver, port, networks)
            if kind == "http-01"
            else TlsAlpn01Validator(resolver, port, 3.0, networks)
        )
        problem = _failure(
            lambda: validator.validate(Identifier("dns", "inside.example.test"), "token123", KEY_AUTH)
        )
        assert _nobody_connected(listener)
    assert problem.kind == "connection" and "127.0.0.0/8" in problem.detail


def test_an_allowed_address_of_the_name_is_still_tried() -> None:
    # The name resolves to a denied address and an allowed one: only the allowed one is used.
    reply = f"HTTP/1.1 200 OK\r\nContent-Length: {len(KEY_AUTH)}\r\n\r\n{KEY_AUTH}"
    with raw_responder(reply.encode()) as port:
        _http01(StubResolver(["169.254.169.254", "127.0.0.1"]), port).validate(
            Identifier("dns", "mixed.example.test"), "token123", KEY_AUTH
        )
