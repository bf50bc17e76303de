"""Certificates from an external ACME CA (RFC 8555), through certbot's ``acme`` library.

The certificate key is the agent's own (the CSR carries only its public half); the account
key is kept in the state directory, one per directory URL. Challenges are answered by a
standalone HTTP listener (http-01, RFC 8555 section 8.3), files under a webroot, or a hook
command that publishes the TXT record (dns-01, section 8.4) and must return only once the
record is visible to the CA.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from certfleet.agent.config import AcmeIssuer
from certfleet.agent.enrollment import build_csr
from certfleet.agent.errors import AcmeFailed
from certfleet.agent.targets import Material
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.x509 import load_certificates

__all__ = ["AcmeObtainer"]

_log = logging.getLogger("certfleet.agent")
_ORDER_DEADLINE = dt.timedelta(minutes=3)
_HOOK_TIMEOUT_SECONDS = 300
_CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class _ChallengeHandler(BaseHTTPRequestHandler):
    """Answers only ``/.well-known/acme-challenge/<token>`` with its key authorization."""

    answers: dict[str, str] = {}

    def do_GET(self) -> None:
        answer = self.answers.get(self.path)
        body = (answer or "not found").encode()
        self.send_response(200 if answer else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("http-01 listener: " + format, *args)


@contextmanager
def _standalone(listen: tuple[str, int], answers: dict[str, str]) -> Iterator[None]:
    handler = type("Handler", (_ChallengeHandler,), {"answers": answers})
    try:
        server = ThreadingHTTPServer(listen, handler)
    except OSError as exc:
        raise AcmeFailed(f"cannot listen for http-01 on {listen[0]}:{listen[1]}: {exc.strerror}") from exc
    thread = threading.Thread(target=server.serve_forever, name="acme-http-01", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _account_key(account_dir: Path) -> JWKEC:
    path = account_dir / "account.key"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(path, pem, mode=0o600)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AcmeFailed(f"{path} is not an EC key")
    return JWKEC(key=key)


class AcmeObtainer:
    def __init__(self, issuer: AcmeIssuer, account_dir: Path, user_agent: str) -> None:
        self._issuer = issuer
        self._account_dir = account_dir
        self._user_agent = user_agent

    def obtain(self, names: tuple[str, ...], key: Any) -> Material:
        try:
            return self._obtain(names, key)
        except CertfleetError:
            raise
        except (errors.Error, messages.Error) as exc:
            raise AcmeFailed(f"{self._issuer.directory}: {exc}") from exc
        except requests.RequestException as exc:
            raise AcmeFailed(f"cannot reach {self._issuer.directory}: {exc}") from exc

    def _client(self) -> tuple[client.ClientV2, JWKEC]:
        jwk = _account_key(self._account_dir)
        verify: bool | str = str(self._issuer.ca_bundle) if self._issuer.ca_bundle else True
        net = client.ClientNetwork(jwk, alg=ES256, verify_ssl=verify, user_agent=self._user_agent)  # type: ignore[arg-type]
        directory = client.ClientV2.get_directory(self._issuer.directory, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self._issuer.email, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:
            # RFC 8555 7.3.1: this key already has an account; the server answers with its URL.
            net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        return acme, jwk

    def _obtain(self, names: tuple[str, ...], key: Any) -> Material:
        acme, jwk = self._client()
        order = acme.new_order(build_csr(key, names).encode())
        with ExitStack() as cleanup:
            answers: dict[str, str] = {}
            to_answer: list[tuple[messages.ChallengeBody, Any]] = []
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # an authorization still valid from an earlier order
                domain = authz.body.identifier.value
                challenge = self._pick(authz)
                response, validation = challenge.response_and_validation(jwk)
                if isinstance(challenge.chall, challenges.HTTP01):
                    path = challenge.chall.path
                    if self._issuer.webroot is not None:
                        cleanup.enter_context(self._webroot_file(path, validation))
                    answers[path] = validation
                else:
                    assert isinstance(challenge.chall, challenges.DNS01)
                    cleanup.enter_context(self._dns_record(domain, validation))
                to_answer.append((challenge, response))
            if answers and self._issuer.http01_listen is not None:
                cleanup.enter_context(_standalone(self._issuer.http01_listen, answers))
            for challenge, response in to_answer:
                acme.answer_challenge(challenge, response)
            deadline = dt.datetime.now() + _ORDER_DEADLINE  # naive local time: the library's
            finished = acme.poll_and_finalize(order, deadline)
        certs = load_certificates(finished.fullchain_pem.encode(), source="the ACME certificate")
        _log.info("obtained %s from %s", ", ".join(names), self._issuer.directory)
        return Material(key, certs[0], tuple(certs[1:]))

    def _pick(self, authz: messages.AuthorizationResource) -> messages.ChallengeBody:
        wanted = challenges.DNS01 if self._issuer.dns01_hook else challenges.HTTP01
        for challenge in authz.body.challenges:
            if isinstance(challenge.chall, wanted):
                return challenge
        offered = ", ".join(c.chall.typ for c in authz.body.challenges)
        raise AcmeFailed(
            f"{authz.body.identifier.value}: the CA offers no {self._issuer.challenge} challenge ({offered})"
        )

    @contextmanager
    def _webroot_file(self, path: str, validation: str) -> Iterator[None]:
        assert self._issuer.webroot is not None
        target = self._issuer.webroot / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        write_atomic(target, validation.encode(), mode=0o644)
        try:
            yield
        finally:
            target.unlink(missing_ok=True)

    def _hook(self, action: str, domain: str, validation: str) -> None:
        assert self._issuer.dns01_hook is not None
        argv = [*self._issuer.dns01_hook, action, f"_acme-challenge.{domain}", validation]
        try:
            result = subprocess.run(argv, capture_output=True, timeout=_HOOK_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AcmeFailed(f"dns-01 hook {argv[0]!r} failed: {exc}") from exc
        if result.returncode != 0:
            output = result.stderr.decode(errors="replace").strip()[-300:]
            raise AcmeFailed(f"dns-01 hook {argv[0]!r} {action} exited with {result.returncode}: {output}")

    @contextmanager
    def _dns_record(self, domain: str, validation: str) -> Iterator[None]:
        self._hook("set", domain.removeprefix("*."), validation)
        try:
            yield
        finally:
            try:
                self._hook("clear", domain.removeprefix("*."), validation)
            except AcmeFailed as exc:
                _log.warning("%s", exc.detail)
