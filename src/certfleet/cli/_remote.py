"""The CLI as a client of a remote certfleet server.

Where commands go: ``CERTFLEET_SERVER``, ``CERTFLEET_TOKEN`` and ``CERTFLEET_CA_FILE`` (for
CI jobs) override, field by field, the login ``certfleet login`` saved in
``$XDG_CONFIG_HOME/certfleet/`` (``remote.json`` with the URL and token, ``ca.pem`` with the
pinned root and the CAs it signed; the directory 0700, the files 0600). With neither, the CLI
works beside the data directory (local mode). A saved token is never sent to another server
than the one it was saved for: ``CERTFLEET_SERVER`` naming another URL needs its own
``CERTFLEET_TOKEN`` and ``CERTFLEET_CA_FILE``.

Whom the CLI trusts is what an agent trusts (:mod:`certfleet.agent.trust`): the server's TLS
certificate must come from a server-identity CA that the pinned root signed, so a certificate
issued for the server's name by certfleet's issuing CA (ACME, REST) cannot impersonate it and
read the token. A CA file holding only the root (as a CI job may have) is enough: the
server-identity CAs are then read from the server's bundle and checked against the root.

This module imports the standard library and typer only: ``certfleet --help`` and
``certfleet version`` import it; httpx and cryptography are imported by the first remote
call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certfleet.cli._common import die
from certfleet.cli._login_store import saved_login

if TYPE_CHECKING:
    import ssl

    import httpx
    from cryptography import x509

    from certfleet.agent.trust import TrustBundle

__all__ = [
    "CA_FILE_ENV",
    "SERVER_ENV",
    "TOKEN_ENV",
    "RemoteServer",
    "local_only",
    "remote_server",
]

SERVER_ENV = "CERTFLEET_SERVER"
TOKEN_ENV = "CERTFLEET_TOKEN"  # noqa: S105 - the variable's name, not a token
CA_FILE_ENV = "CERTFLEET_CA_FILE"
CA_BUNDLE_PATH = "/api/v1/agent/ca.pem"  # the bundle agents pin against, served over HTTPS
_TIMEOUT_SECONDS = 60.0
_CONNECT_TIMEOUT_SECONDS = 10.0


def normalize_url(raw: str) -> str:
    """``https://host[:port]`` without a trailing slash; anything else is refused, because the
    token must only ever travel over verified TLS."""
    url = raw.strip().rstrip("/")
    if not url.startswith("https://") or len(url) <= len("https://"):
        die(f"the server must be an https:// URL (got {raw!r})")
    if any(c.isspace() for c in url):
        die(f"the server URL must not contain spaces (got {raw!r})")
    return url


@dataclass(frozen=True)
class RemoteServer:
    """A server the CLI talks to: its URL (``https://host:port``, no trailing slash), the
    bearer token, and the pinned root's PEM file (optionally followed by the CAs it signed)."""

    url: str
    token: str
    ca_file: Path
    _session: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON body of a 2xx answer (None for 204 or an empty body). A refusal (4xx/5xx)
        ends the command with the server's problem detail as the one line and exit 2, as
        local mode's refusals do; an unreachable server with one line and exit 1."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._send(method, path, json, query)
        if response.status_code >= 400:
            die(_problem_detail(response), 2)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            if response.headers.get("content-type", "").startswith("application/json"):
                die(f"the server's answer to {method} {path} is not valid JSON", 1)
            return response.text

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a keyset-paged listing (``{"items": [...], "next_cursor": ...}``):
        ``next_cursor`` is passed back as ``cursor`` with the same filters until it is null."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self.request("GET", path, params={**(params or {}), "cursor": cursor})
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def get_text(self, path: str) -> str:
        """A 2xx answer's body as text (PEM documents and the like)."""
        response = self._send("GET", path, None, {})
        if response.status_code >= 400:
            die(_problem_detail(response), 2)
        return response.text

    def _send(self, method: str, path: str, body: Any, query: Mapping[str, Any]) -> httpx.Response:
        import httpx

        relearned = False
        while True:
            try:
                return self._client().request(
                    method,
                    path,
                    json=body,
                    params=query,
                    headers={"Authorization": f"Bearer {self.token}"},
                )
            except httpx.HTTPError as exc:
                if _verification_failed(exc) and not relearned and self._relearn():
                    relearned = True  # the server rolled its server-identity CA: once more
                    continue
                if _verification_failed(exc):
                    die(
                        f"cannot verify the certfleet server {self.url} against the pinned root "
                        f"({self.ca_file}): refusing to send the token ({_reason(exc)})",
                        1,
                    )
                die(f"cannot reach the certfleet server {self.url}: {_reason(exc)}", 1)

    def _client(self) -> httpx.Client:
        client = self._session.get("client")
        if client is None:
            import httpx

            context = self._ssl_context(self._server_cas())
            # trust_env off: a proxy or CA bundle from the environment must not see the token
            # or widen what is trusted.
            client = httpx.Client(
                base_url=self.url,
                verify=context,
                timeout=httpx.Timeout(_TIMEOUT_SECONDS, connect=_CONNECT_TIMEOUT_SECONDS),
                trust_env=False,
            )
            self._session["client"] = client
        return client

    def close(self) -> None:
        client = self._session.pop("client", None)
        if client is not None:
            client.close()

    def _root_and_cas(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        from certfleet.errors import CertfleetError
        from certfleet.x509 import load_certificates, signed_by

        try:
            certificates = load_certificates(self.ca_file.read_bytes(), source=str(self.ca_file))
        except OSError as exc:
            die(f"cannot read the pinned root {self.ca_file}: {exc.strerror}")
        except CertfleetError as exc:
            die(f"cannot read the pinned root {self.ca_file}: {exc.detail}")
        root = certificates[0]
        if not signed_by(root, root):
            die(f"{self.ca_file} does not start with a self-signed root certificate")
        return root, certificates[1:]

    def _server_cas(self) -> tuple[x509.Certificate, ...]:
        from certfleet.ca import is_server_identity_ca

        if "server_cas" not in self._session:
            root, others = self._root_and_cas()
            known = tuple(c for c in others if is_server_identity_ca(c, root))
            self._session["server_cas"] = known or _learn_server_cas(self.url, root)
        cas: tuple[x509.Certificate, ...] = self._session["server_cas"]
        return cas

    def _relearn(self) -> bool:
        """After a failed verification: True when the server's bundle taught a new
        server-identity CA (kept in memory for this command)."""
        root, _ = self._root_and_cas()
        learned = _learn_server_cas(self.url, root)
        if set(learned) <= set(self._server_cas()):
            return False
        self.close()
        self._session["server_cas"] = learned
        return True

    @staticmethod
    def _ssl_context(server_cas: tuple[x509.Certificate, ...]) -> ssl.SSLContext:
        from certfleet.agent.trust import server_ssl_context
        from certfleet.errors import CertfleetError

        try:
            return server_ssl_context(server_cas, None)
        except CertfleetError as exc:
            die(exc.detail)


def _learn_server_cas(url: str, root: x509.Certificate) -> tuple[x509.Certificate, ...]:
    """The server-identity CAs of the server's bundle, read without verification (nothing
    secret is sent) and kept only if the whole bundle verifies against ``root``."""
    bundle = fetch_bundle(url, _fingerprint(root))
    if not bundle.server_cas:
        die(
            f"the server {url} offers no server-identity CA signed by the pinned root: "
            "upgrade the certfleet server (serve creates that CA at start-up)"
        )
    return bundle.server_cas


def _fingerprint(certificate: x509.Certificate) -> str:
    from certfleet.x509 import fingerprint_sha256

    return fingerprint_sha256(certificate)


def fetch_bundle(url: str, pin: str) -> TrustBundle:
    """The server's CA bundle (:data:`CA_BUNDLE_PATH`), fetched without verification and
    checked against the root whose SHA-256 is ``pin``. A mismatch or a foreign certificate ends the
    command (exit 2); an unreachable server too (exit 1)."""
    from certfleet.agent.client import fetch_unverified
    from certfleet.agent.errors import ServerUnreachable
    from certfleet.agent.trust import verify_bundle
    from certfleet.errors import CertfleetError
    from certfleet.x509 import load_certificates

    try:
        pem = fetch_unverified(f"{url}{CA_BUNDLE_PATH}")
        return verify_bundle(load_certificates(pem, source="the server's CA bundle"), pin)
    except ServerUnreachable as exc:
        die(exc.detail, 1)
    except CertfleetError as exc:
        die(exc.detail)


def _verification_failed(exc: BaseException) -> bool:
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _problem_detail(response: httpx.Response) -> str:
    """The one line of a refusal: the problem document's ``detail`` (RFC 7807), else its
    title, else the status line and the start of the body."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        detail = document.get("detail") or document.get("title")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(detail, list):  # FastAPI's own validation errors
            return "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    text = response.text.strip()[:200]
    status = f"the server answered {response.status_code} {response.reason_phrase}"
    return f"{status}: {text}" if text else status


def remote_server(environ: Mapping[str, str] | None = None) -> RemoteServer | None:
    """The server commands go to, or None for local mode. Each of ``CERTFLEET_SERVER``,
    ``CERTFLEET_TOKEN`` and ``CERTFLEET_CA_FILE`` overrides its part of the saved login; the
    saved token and root are used only for the URL they were saved for."""
    env = os.environ if environ is None else environ
    saved = saved_login(env)
    url_env = env.get(SERVER_ENV, "").strip()
    token_env = env.get(TOKEN_ENV, "").strip()
    ca_env = env.get(CA_FILE_ENV, "").strip()
    if not url_env and saved is None:
        if token_env or ca_env:
            named = TOKEN_ENV if token_env else CA_FILE_ENV
            die(f"{named} is set but no server is: set {SERVER_ENV} too, or run 'certfleet login'")
        return None
    url = normalize_url(url_env) if url_env else saved.url  # type: ignore[union-attr]
    same = saved is not None and saved.url == url
    token = token_env or (saved.token if same and saved is not None else "")
    ca_file = Path(ca_env) if ca_env else (saved.ca_file if same and saved is not None else None)
    if not token:
        die(f"{SERVER_ENV} is {url} but no token is set: set {TOKEN_ENV}, or run 'certfleet login {url}'")
    if ca_file is None:
        die(
            f"{SERVER_ENV} is {url} but no pinned root is set: set {CA_FILE_ENV} to the server's root "
            f"(PEM), or run 'certfleet login {url} --ca-fingerprint SHA256'"
        )
    return RemoteServer(url, token, ca_file)


def local_only(command: str) -> None:
    """For commands that run beside the data (init, serve, db, agent run): one line and exit
    2 when a remote server is configured."""
    env = os.environ
    url = env.get(SERVER_ENV, "").strip()
    if not url:
        saved = saved_login(env)
        url = saved.url if saved is not None else ""
    if url:
        die(
            f"certfleet {command} runs beside the data directory; a remote server is configured "
            f"({url}): unset {SERVER_ENV} or run certfleet logout"
        )
