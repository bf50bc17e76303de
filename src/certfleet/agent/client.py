"""The agent's client of the certfleet server: HTTPS verified against the pinned root,
authenticated by the agent's identity certificate (mTLS) once enrolled."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from certfleet.agent.errors import AgentError, ServerUnreachable
from certfleet.errors import CertfleetError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated

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


class ServerClient:
    def __init__(self, server: str, ca_file: Path, identity_file: Path | None = None) -> None:
        self.server = server
        self._ca_file = ca_file
        self._identity_file = identity_file
        self._client = self._connect()

    def _connect(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self._ca_file))
        if self._identity_file is not None:
            try:
                context.load_cert_chain(str(self._identity_file))
            except (OSError, ssl.SSLError) as exc:
                raise AgentError(f"cannot load the agent identity {self._identity_file}: {exc}") from exc
        # trust_env off: a proxy from the environment must not see (or break) agent traffic.
        return httpx.Client(base_url=self.server, verify=context, timeout=_TIMEOUT, trust_env=False)

    def reload_identity(self) -> None:
        """Present the identity file's current certificate from now on (after a renewal)."""
        self._client.close()
        self._client = self._connect()

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"cannot reach the certfleet server {self.server}: {exc}") from exc
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

    def instructions(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/agent/instructions")
        return result
