"""Health check: a TLS handshake that must present the certificate just deployed.

A reload is often asynchronous (``nginx -s reload`` returns before the workers switch), so
the check polls until the endpoint presents the expected certificate or the deadline passes.
One handshake with the new certificate is not enough: while nginx's master starts the new
workers, the old ones still accept connections until told to stop, so a client right after
could still get the old certificate (seen in the agent's nginx test once the agent exited
sooner). The check passes when the certificate is presented on several handshakes in a row,
a little apart; a handshake with anything else in between starts the count again.
The peer's chain is not validated here: the question is *which* certificate the service
serves, and its SHA-256 fingerprint answers it exactly.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import time

from certfleet.agent.config import HealthCheck
from certfleet.agent.errors import HealthCheckFailed

__all__ = ["presented_fingerprint", "wait_for_certificate"]

_POLL_SECONDS = 0.2
# Handshakes in a row that must present the new certificate, and the pause between them.
_STEADY_HANDSHAKES = 3
_STEADY_PAUSE_SECONDS = 0.05


def _server_hostname(sni: str | None) -> str | None:
    if not sni:
        return None
    try:
        ipaddress.ip_address(sni)
    except ValueError:
        return sni
    return None  # RFC 6066 section 3: SNI carries host names only, never IP addresses


def presented_fingerprint(check: HealthCheck, timeout_seconds: float = 5.0) -> str:
    """SHA-256 of the certificate the endpoint presents. Raises OSError or ssl.SSLError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # identify the certificate, do not judge it
    with (
        socket.create_connection((check.host, check.port), timeout=timeout_seconds) as sock,
        context.wrap_socket(sock, server_hostname=_server_hostname(check.sni)) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the endpoint presented no certificate")
    return hashlib.sha256(der).hexdigest()


def wait_for_certificate(check: HealthCheck, fingerprint: str) -> None:
    """Return once the endpoint presents ``fingerprint`` steadily (see above);
    HealthCheckFailed at the deadline."""
    deadline = time.monotonic() + check.timeout_seconds
    seen = "nothing"
    in_a_row = 0
    while True:
        try:
            presented = presented_fingerprint(check, min(5.0, check.timeout_seconds))
            if presented == fingerprint:
                in_a_row += 1
                if in_a_row >= _STEADY_HANDSHAKES:
                    return
                time.sleep(_STEADY_PAUSE_SECONDS)
                continue
            seen = f"certificate {presented[:16]}..."
        except (OSError, ssl.SSLError) as exc:
            seen = f"an error ({exc.strerror or exc})" if isinstance(exc, OSError) else f"an error ({exc})"
        in_a_row = 0
        if time.monotonic() >= deadline:
            raise HealthCheckFailed(
                f"{check.endpoint} did not present certificate {fingerprint[:16]}... within "
                f"{check.timeout_seconds:g} s (last saw {seen})"
            )
        time.sleep(_POLL_SECONDS)
