"""The agent's client of the certfleet server: HTTPS verified against the server-identity CA
under the pinned root (certfleet.agent.trust), authenticated by the agent's identity
certificate (mTLS) once enrolled."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from certfleet.agent.errors import AgentError, ServerUnreachable, UntrustedServer
from certfleet.agent.trust import TrustFiles, server_ssl_context, verify_bundle
from certfleet.errors import CertfleetError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from certfleet.x509 import fingerprint_sha256, load_certificates

__all__ = ["ServerClient", "fetch_unverified"]

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_ERRORS: dict[int, type[CertfleetError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = str(response.json().get("detail") or response.reason_phrase)
    except ValueError:
        detail = response.text[:200] or response.reason_phrase
    error = _ERRORS.get(response.status_code, AgentError)
    raise error(f"server refused ({response.status_code}): {detail}")


def fetch_unverified(url: str) -> bytes:
    """GET without verifying the server: only for data checked afterwards (the CA bundle,
    whose root must match a pinned fingerprint). Nothing secret is ever sent this way."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with httpx.Client(verify=context, timeout=_TIMEOUT, trust_env=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ServerUnreachable(f"cannot reach {url}: {exc}") from exc
    _raise_for(response)
    return response.content


def _verification_failed(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind an httpx error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class ServerClient:
    """``ca_file`` is the state directory's ``ca.pem`` (the pinned root first); the server is
    trusted only through the server-identity CAs kept beside it (see certfleet.agent.trust).
    The connection is made on the first call, so a server that is down fails that call, not
    the construction."""

    def __init__(self, server: str, ca_file: Path, identity_file: Path | None = None) -> None:
        self.server = server
        self._trust = TrustFiles(ca_file)
        self._identity_file = identity_file
        self._client: httpx.Client | None = None

    def _connect(self) -> httpx.Client:
        root = self._trust.root()
        server_cas = self._trust.server_cas(root) or self._learn_server_cas(root, ())
        if not server_cas:
            raise UntrustedServer(
                f"the server {self.server} offers no server-identity CA signed by the pinned root: "
                "upgrade the certfleet server (serve creates that CA at start-up)"
            )
        context = server_ssl_context(server_cas, self._identity_file)
        # trust_env off: a proxy from the environment must not see (or break) agent traffic.
        return httpx.Client(base_url=self.server, verify=context, timeout=_TIMEOUT, trust_env=False)

    def _learn_server_cas(
        self, root: x509.Certificate, known: tuple[x509.Certificate, ...]
    ) -> tuple[x509.Certificate, ...]:
        """Re-read the server's CA bundle (unverified: nothing secret is sent) and keep the
        server-identity CAs that verify against the pinned root. Returns them all when the
        bundle taught a new one, else ``()``. A bundle with anything the root did not sign
        raises :class:`UntrustedServer`."""
        pem = fetch_unverified(f"{self.server}/api/v1/agent/ca.pem")
        bundle = verify_bundle(
            load_certificates(pem, source="the server's CA bundle"), fingerprint_sha256(root)
        )
        new = tuple(c for c in bundle.server_cas if c not in known)
        if not new:
            return ()
        self._trust.save_server_cas((*known, *new))
        return (*known, *new)

    def _relearn(self) -> bool:
        """After a failed verification: True when a new server-identity CA was learned."""
        root = self._trust.root()
        if not self._learn_server_cas(root, self._trust.server_cas(root)):
            return False
        self.close()
        return True

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def reload_identity(self) -> None:
        """Present the identity file's current certificate from now on (after a renewal)."""
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        relearned = False
        while True:
            try:
                response = self._http().request(method, path, json=body)
            except httpx.HTTPError as exc:
                failure = _verification_failed(exc)
                if failure is None:
                    raise ServerUnreachable(
                        f"cannot reach the certfleet server {self.server}: {exc}"
                    ) from exc
                # The handshake failed, so no byte of the request left: retrying is safe.
                if not relearned and self._relearn():
                    relearned = True
                    continue
                raise UntrustedServer(
                    f"the server {self.server} is not certfleet's: its TLS certificate does not come "
                    f"from the server-identity CA under the pinned root ({failure.verify_message}); "
                    "nothing was sent"
                ) from exc
            _raise_for(response)
            return response.json()

    def enroll(self, token: str, csr_pem: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/enroll", {"token": token, "csr": csr_pem})
        return result

    def renew_identity(self, csr_pem: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/identity", {"csr": csr_pem})
        return result

    def issue(self, name: str, csr_pem: str, profile: str, validity_days: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "csr": csr_pem, "profile": profile}
        if validity_days is not None:
            body["validity_days"] = validity_days
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/certificates", body)
        return result

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/deployments", body)
        return result

    def report_trust_stores(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/trust-stores", body)
        return result

    def instructions(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/agent/instructions")
        return result

    def trust_anchors(self) -> dict[str, Any]:
        """Every active certfleet root, over this authenticated channel only (trust_anchors.py)."""
        result: dict[str, Any] = self._call("GET", "/api/v1/agent/trust-anchors")
        return result

    # -- SPIFFE (the Workload API's source; certfleet.agent.workload.remote) ---------------

    def spiffe_entries(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/agent/spiffe/entries")
        return result

    def spiffe_x509_svids(self, requests: list[dict[str, str]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/spiffe/x509-svids", {"requests": requests})
        return result

    def spiffe_jwt_svid(self, entry_id: str, audience: list[str]) -> dict[str, Any]:
        body = {"entry_id": entry_id, "audience": audience}
        result: dict[str, Any] = self._call("POST", "/api/v1/agent/spiffe/jwt-svids", body)
        return result

    def spiffe_bundle(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/agent/spiffe/bundle")
        return result
