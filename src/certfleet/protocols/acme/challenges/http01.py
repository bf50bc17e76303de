"""http-01 (RFC 8555 section 8.3): fetch the key authorization over plain HTTP."""

from __future__ import annotations

import ipaddress

import httpx

from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.resolver import Resolver

__all__ = ["Http01Validator"]

# A key authorization is under 200 bytes; read a little more to tell "wrong" from "huge".
_MAX_BODY = 8192


def _url_host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


class Http01Validator:
    """Connects to each address of the name in turn on ``port`` (80 unless configured) and
    sends ``Host: <name>``. Redirects are not followed: the response must come from the
    validated host itself."""

    def __init__(self, resolver: Resolver, port: int, timeout_seconds: float) -> None:
        self._resolver = resolver
        self._port = port
        self._timeout = timeout_seconds

    def validate(self, identifier: Identifier, token: str, key_authorization: str) -> None:
        if identifier.type == "ip":
            addresses: list[str] = [identifier.value]
            host_header = _url_host(identifier.value)
        else:
            addresses = list(self._resolver.addresses(identifier.value))
            host_header = identifier.value
        path = f"/.well-known/acme-challenge/{token}"
        last: AcmeProblem | None = None
        for address in addresses:
            url = f"http://{_url_host(address)}:{self._port}{path}"
            try:
                with (
                    httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False) as client,
                    client.stream("GET", url, headers={"Host": host_header}) as response,
                ):
                    body = b""
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > _MAX_BODY:
                            break
                    status = response.status_code
            except httpx.TimeoutException as exc:
                last = AcmeProblem("connection", f"timeout fetching {url} for {identifier.value}")
                last.__cause__ = exc
                continue
            except httpx.HTTPError as exc:
                last = AcmeProblem("connection", f"cannot fetch {url} for {identifier.value}: {exc}")
                continue
            if status != 200:
                raise AcmeProblem(
                    "incorrectResponse", f"GET {path} on {identifier.value} answered HTTP {status}, not 200"
                )
            # RFC 8555 section 8.3: trailing whitespace is ignored.
            text = body[: _MAX_BODY + 1].decode(errors="replace").rstrip()
            if text != key_authorization:
                shown = text[:80] + ("..." if len(text) > 80 else "")
                raise AcmeProblem(
                    "incorrectResponse",
                    f"GET {path} on {identifier.value} returned {shown!r}, not the key authorization",
                )
            return
        assert last is not None
        raise last
