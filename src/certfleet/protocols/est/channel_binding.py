"""Channel binding (RFC 7030 section 3.5): a client may put the base64 of its TLS
connection's tls-unique value (RFC 5929) in the CSR's challengePassword, binding its proof of
possession to the connection that authenticated it.

tls-unique exists only up to TLS 1.2: RFC 8446 section C.5 leaves it undefined for TLS 1.3
(RFC 9266 replaces it with tls-exporter, which Python's ``ssl`` module cannot export). What
is enforced: on TLS 1.2 a challengePassword must equal the connection's tls-unique, else 400;
on TLS 1.3 a CSR carrying one is refused (400) rather than accepted unchecked, since its
sender expects a check we cannot make; a CSR without one is accepted on either version.
"""

from __future__ import annotations

import base64
import hmac

from certfleet.protocols.est.errors import ChannelBindingMismatch

__all__ = ["TLS_1_3", "check_channel_binding"]

TLS_1_3 = 0x0304  # the ASGI TLS extension's tls_version for TLS 1.3


def check_channel_binding(
    challenge_password: bytes | None, tls_version: int | None, tls_unique: bytes | None
) -> None:
    """Raise :class:`ChannelBindingMismatch` unless the CSR is unbound or bound to this
    connection. ``tls_unique`` is None when the connection has no such value."""
    if challenge_password is None:
        return
    if tls_version is not None and tls_version >= TLS_1_3:
        raise ChannelBindingMismatch(
            "the CSR carries a challengePassword (tls-unique channel binding, RFC 7030 section 3.5), "
            "but this connection is TLS 1.3, where tls-unique is undefined (RFC 8446 section C.5): "
            "connect with TLS 1.2 to bind the CSR, or leave the attribute out"
        )
    if tls_unique is None:
        raise ChannelBindingMismatch(
            "the CSR carries a challengePassword (tls-unique channel binding), "
            "but this connection has no tls-unique value to compare it with"
        )
    expected = base64.b64encode(tls_unique)
    if not hmac.compare_digest(challenge_password.strip(), expected):
        raise ChannelBindingMismatch(
            "the CSR's challengePassword is not this TLS connection's tls-unique value "
            "(RFC 7030 section 3.5): the CSR was made for another connection"
        )
